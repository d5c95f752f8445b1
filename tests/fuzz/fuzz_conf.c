/*
 * fuzz_conf.c - the config loader: the bytes are a config file given to
 * conf_load_string (files it names are not opened).  Invariant: RD_OK
 * comes with a conf, anything else with none and a message.
 */
#include "conf.h"
#include "fuzz.h"

static void fuzz_conf(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    repod_conf *conf = NULL;
    rd_error err;

    if (conf_load_string(text, "/etc/repod/repod.json", &conf, &err) == RD_OK) {
        FUZZ_CHECK(conf != NULL);
    } else {
        FUZZ_CHECK(conf == NULL);
        FUZZ_CHECK(err.message[0] != '\0');
    }
    conf_free(conf);
    free(text);
}

FUZZ_ENTRY(conf)
