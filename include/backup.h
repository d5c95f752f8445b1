/*
 * backup.h - the backup folder of `repod backup` / `repod restore` and the
 * control socket through which a running server takes the checkpoint.
 *
 * A backup folder holds
 *   manifest.json   written last: format, repod version, time, the source
 *                   (config, data_dir, tokens_file) and every file below
 *                   with its size and SHA-256
 *   db/...          the RocksDB files (a checkpoint, or the files of a
 *                   stopped server's data_dir)
 *   tokens.json     the tokens file, when there was one
 *   repod.json      the config file, for reference (restore leaves the
 *                   config alone)
 * A folder without manifest.json is an unfinished backup.
 *
 * Functions returning int give 0, or -1 with a one-line reason for the
 * operator in reason[0..n).
 */
#ifndef REPOD_BACKUP_H
#define REPOD_BACKUP_H

#include <jansson.h>
#include <stddef.h>

/* Name of the control socket in the data folder, and of the folder where
 * the server writes checkpoints for `repod backup` to copy. */
#define BACKUP_CONTROL_SOCKET "control.sock"
#define BACKUP_STAGING_DIR    "backup.staging"

/* Copies the regular files of src_dir (not its subfolders) into
 * root/sub/ (created), skipping names in skip (NULL-terminated; may be
 * NULL), and appends {"path": "sub/NAME", "size", "sha256"} to files.
 * Every file and folder is fsynced. */
int backup_copy_dir(const char *src_dir, const char *root, const char *sub, const char *const *skip,
                    json_t *files, char *reason, size_t n);

/* Copies one file into root/rel and appends its entry to files. */
int backup_copy_file(const char *src, const char *root, const char *rel, json_t *files,
                     char *reason, size_t n);

/* Checks dir/manifest.json and every file it lists (size, SHA-256).  On
 * success *manifest is a new reference to the parsed manifest. */
int backup_verify(const char *dir, json_t **manifest, char *reason, size_t n);

/* 1 when dir exists and holds any entry, else 0. */
int backup_dir_nonempty(const char *dir);

/* Gives path and everything below it to uid:gid (restore as root into a
 * folder owned by the service user). */
void backup_chown_tree(const char *path, unsigned uid, unsigned gid);

/* `repod backup ...` / `repod restore ...` (argv[0] is the verb).  Exit
 * codes: 0 done, 1 failure (reason on stderr), 2 bad usage. */
int backup_cli_main(int argc, char **argv);

#endif
