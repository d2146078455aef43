/* libcurl transport: one easy handle per client, reused for keep-alive. */
#include "cjc_http.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

struct cjc_http {
    CURL *curl;
    char base_url[CJC_URL_MAX];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_global_setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

enum cj_status cjc_http_new(const char *base_url, struct cjc_http **out)
{
    struct cjc_http *http = NULL;
    size_t len = strlen(base_url);

    *out = NULL;
    if (len == 0 || len >= CJC_URL_MAX)
        return CJ_ERR_INVALID;
    pthread_once(&curl_once, curl_global_setup);
    http = calloc(1, sizeof(*http));
    if (http == NULL)
        return CJ_ERR_NOMEM;
    http->curl = curl_easy_init();
    if (http->curl == NULL) {
        free(http);
        return CJ_ERR_NOMEM;
    }
    /* Paths start with '/', so a trailing slash on the base is dropped. */
    memcpy(http->base_url, base_url, len + 1);
    if (http->base_url[len - 1] == '/')
        http->base_url[len - 1] = '\0';
    *out = http;
    return CJ_OK;
}

/* Gets one part of a parsed URL into *out. Returns false when the part is
 * absent, and sets *failed on any other error. */
static bool url_part(CURLU *parsed, CURLUPart what, unsigned int flags,
                     char **out, bool *failed)
{
    CURLUcode uc = curl_url_get(parsed, what, out, flags);

    if (uc == CURLUE_OK)
        return true;
    *out = NULL;
    if (uc != CURLUE_NO_PORT && uc != CURLUE_NO_QUERY &&
        uc != CURLUE_NO_FRAGMENT && uc != CURLUE_NO_USER)
        *failed = true;
    return false;
}

static void lower_ascii(char *text)
{
    for (; *text != '\0'; text++)
        if (*text >= 'A' && *text <= 'Z')
            *text = (char)(*text - 'A' + 'a');
}

enum cj_status cjc_url_normalize(const char *url, char *out, size_t outlen)
{
    enum cj_status rc = CJ_ERR_INVALID;
    CURLU *parsed = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    char *query = NULL, *fragment = NULL, *user = NULL;
    bool failed = false;
    size_t path_len;
    int n;

    if (parsed == NULL)
        return CJ_ERR_NOMEM;
    /* Without a scheme curl would guess one, and the CLI names it. */
    if (strncasecmp(url, "http://", 7) != 0 &&
        strncasecmp(url, "https://", 8) != 0)
        goto out;
    if (curl_url_set(parsed, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    url_part(parsed, CURLUPART_SCHEME, 0, &scheme, &failed);
    url_part(parsed, CURLUPART_HOST, 0, &host, &failed);
    /* CURLU_NO_DEFAULT_PORT reports the scheme's default port as absent. */
    url_part(parsed, CURLUPART_PORT, CURLU_NO_DEFAULT_PORT, &port, &failed);
    url_part(parsed, CURLUPART_PATH, 0, &path, &failed);
    if (failed || scheme == NULL || host == NULL || path == NULL ||
        url_part(parsed, CURLUPART_QUERY, 0, &query, &failed) ||
        url_part(parsed, CURLUPART_FRAGMENT, 0, &fragment, &failed) ||
        url_part(parsed, CURLUPART_USER, 0, &user, &failed) || failed)
        goto out;
    lower_ascii(scheme);
    lower_ascii(host);
    /* Every route starts at the gateway's root, so a path would only turn
     * each request into a 404 that does not say why. Slashes alone are
     * the root. */
    path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;
    if (path_len > 0)
        goto out;
    n = snprintf(out, outlen, "%s://%s%s%s", scheme, host,
                 port != NULL ? ":" : "", port != NULL ? port : "");
    rc = n >= 0 && (size_t)n < outlen ? CJ_OK : CJ_ERR_TOO_LARGE;

out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(fragment);
    curl_free(user);
    curl_url_cleanup(parsed);
    return rc;
}

void cjc_http_free(struct cjc_http *http)
{
    if (http == NULL)
        return;
    curl_easy_cleanup(http->curl);
    free(http);
}

void cjc_http_response_clear(struct cjc_http_response *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
    resp->retry_after_seconds = -1;
    resp->date_seconds = -1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct cjc_http_response *resp = userdata;
    size_t n = size * nmemb;

    if (resp->body_len + n > CJC_HTTP_MAX_RESPONSE)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    char *grown = realloc(resp->body, resp->body_len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + resp->body_len, data, n);
    resp->body = grown;
    resp->body_len += n;
    resp->body[resp->body_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct cjc_http_response *resp = userdata;
    size_t n = size * nmemb;
    char line[256];
    size_t len = n < sizeof(line) - 1 ? n : sizeof(line) - 1;

    memcpy(line, data, len);
    line[len] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (strncasecmp(line, "Retry-After:", 12) == 0)
        resp->retry_after_seconds = strtol(line + 12, NULL, 10);
    else if (strncasecmp(line, "Date:", 5) == 0)
        resp->date_seconds = (long long)curl_getdate(line + 5, NULL);
    else if (strncasecmp(line, "Content-Type:", 13) == 0)
        snprintf(resp->content_type, sizeof(resp->content_type), "%s",
                 line + 13 + strspn(line + 13, " "));
    return n;
}

static struct curl_slist *build_headers(const struct cjc_http_header *headers,
                                        size_t n_headers)
{
    struct curl_slist *list = NULL;
    char line[8192];

    /* curl adds "Expect: 100-continue" to large POSTs; the gateway answers
     * at once, so the extra round trip only costs time. */
    list = curl_slist_append(list, "Expect:");
    for (size_t i = 0; i < n_headers && list != NULL; i++) {
        snprintf(line, sizeof(line), "%s: %s", headers[i].name,
                 headers[i].value);
        struct curl_slist *next = curl_slist_append(list, line);
        if (next == NULL) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

enum cj_status cjc_http_request(struct cjc_http *http, const char *method,
                                const char *path,
                                const struct cjc_http_header *headers,
                                size_t n_headers, const void *body,
                                size_t body_len, struct cjc_http_response *resp,
                                char *err, size_t errlen)
{
    enum cj_status rc = CJ_ERR_UNAVAILABLE;
    struct curl_slist *list = NULL;
    char url[CJC_URL_MAX + 2048];
    CURL *c = http->curl;
    CURLcode cc;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after_seconds = -1;
    resp->date_seconds = -1;
    if (snprintf(url, sizeof(url), "%s%s", http->base_url, path) >=
        (int)sizeof(url)) {
        snprintf(err, errlen, "request path is too long");
        rc = CJ_ERR_INVALID;
        goto out;
    }
    list = build_headers(headers, n_headers);
    if (list == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, CJC_HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }

    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "request to %s failed: %s", http->base_url,
                 curl_easy_strerror(cc));
        rc = cc == CURLE_OPERATION_TIMEDOUT ? CJ_ERR_TIMEOUT
                                            : CJ_ERR_UNAVAILABLE;
        cjc_http_response_clear(resp);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    rc = CJ_OK;

out:
    curl_slist_free_all(list);
    return rc;
}
