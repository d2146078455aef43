/*
 * Replays every file in the folders given as arguments through the fuzz
 * entry point, so corpus seeds and kept crash inputs run as a regression
 * test with any compiler (no libFuzzer needed).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest input replayed, matching the fuzzer's -max_len in
 * scripts/fuzz.sh with room to spare (1 MiB). */
#define REPLAY_MAX_INPUT_LEN (1 << 20)

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(REPLAY_MAX_INPUT_LEN);
    size_t len;

    if (f == NULL || buf == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        if (f != NULL) {
            fclose(f);
        }
        free(buf);
        return -1;
    }
    len = fread(buf, 1, REPLAY_MAX_INPUT_LEN, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    size_t count = 0;

    for (int i = 1; i < argc; i++) {
        DIR *dir = opendir(argv[i]);
        struct dirent *entry;
        if (dir == NULL) {
            fprintf(stderr, "cannot open folder %s\n", argv[i]);
            return 1;
        }
        while ((entry = readdir(dir)) != NULL) {
            char path[4096];
            struct stat st;
            snprintf(path, sizeof(path), "%s/%s", argv[i], entry->d_name);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
                entry->d_name[0] == '.') {
                continue;
            }
            if (replay_file(path) != 0) {
                closedir(dir);
                return 1;
            }
            count++;
        }
        closedir(dir);
    }
    printf("fuzz replay: %zu inputs replayed without a crash\n", count);
    return 0;
}
