/*
 * testkit.h - helpers shared by the cmocka test programs: temporary folders,
 * small files, and the dev certificate script.
 */
#ifndef REPOD_TESTKIT_H
#define REPOD_TESTKIT_H

/* Removes dir and everything below it (no-op when it does not exist). */
void testkit_rm_tree(const char *dir);

/* Writes text to path (created or replaced); fails the test on error. */
void testkit_write_text(const char *path, const char *text);

/* The path of certs/gen-dev-certs.sh: under $REPOD_SOURCE_DIR (set by
 * ctest), else relative to the working folder; NULL when not found. */
const char *testkit_cert_script(void);

#endif
