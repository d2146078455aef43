#!/usr/bin/env bash
# Formatting check (clang-format, the checked-in .clang-format) and static
# analysis (cppcheck) of every C file that is ours.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files '*.c' '*.h')
if ((${#files[@]} == 0)); then
    echo "lint: no C files"
    exit 0
fi

echo "lint: clang-format on ${#files[@]} files"
clang-format --dry-run --Werror "${files[@]}"

echo "lint: cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
    --enable=warning,portability,performance \
    --suppress=missingIncludeSystem -DCJ_LINT_CPPCHECK -I common "${files[@]}"
echo "lint: clean"
