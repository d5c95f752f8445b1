/*
 * testkit.c - helpers shared by the cmocka test programs.
 */
#include "testkit.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testkit_rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void testkit_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

const char *testkit_cert_script(void)
{
    static char path[1024];
    static const char *const rel[] = {"certs/gen-dev-certs.sh", "../certs/gen-dev-certs.sh",
                                      "../../certs/gen-dev-certs.sh",
                                      "../../../certs/gen-dev-certs.sh", NULL};
    const char *src = getenv("REPOD_SOURCE_DIR");
    if (src != NULL && src[0] != '\0') {
        snprintf(path, sizeof(path), "%s/certs/gen-dev-certs.sh", src);
        if (access(path, R_OK) == 0)
            return path;
    }
    for (size_t i = 0; rel[i] != NULL; i++)
        if (access(rel[i], R_OK) == 0)
            return rel[i];
    return NULL;
}
