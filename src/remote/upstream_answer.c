/*
 * upstream_answer.c - a failed upstream call -> rd_status and message
 * (upstream_answer.h).  The upstream's own strings are cleaned before they
 * reach a message: they go to clients and to the log.
 */
#include "upstream_answer.h"

#include <string.h>

#include "httpc.h"

static const char redacted[] = "[redacted]";

static char clean_byte(char c)
{
    unsigned char u = (unsigned char)c;
    return u < 0x20 || u == 0x7f ? '?' : c;
}

/* 1 when s, cleaned, starts with token (tlen > 0). */
static int token_at(const char *s, const char *token, size_t tlen)
{
    for (size_t i = 0; i < tlen; i++)
        if (s[i] == '\0' || clean_byte(s[i]) != token[i])
            return 0;
    return 1;
}

/* Cuts a UTF-8 sequence left incomplete at the end of out[0..n). */
static size_t utf8_boundary(const char *out, size_t n)
{
    size_t i = n, cont = 0;
    while (i > 0 && cont < 4 && ((unsigned char)out[i - 1] & 0xC0) == 0x80) {
        i--;
        cont++;
    }
    if (i > 0) {
        unsigned char lead = (unsigned char)out[i - 1];
        size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
        if (lead >= 0x80 && need != cont)
            return i - 1;
    }
    return n;
}

void upstream_answer_clean(const char *s, const char *token, size_t max, char *out, size_t size)
{
    size_t tlen = token != NULL ? strlen(token) : 0, n = 0, limit;
    int cut = 0;

    if (size == 0)
        return;
    limit = max < size - 1 ? max : size - 1;
    while (s != NULL && *s != '\0') {
        if (tlen > 0 && token_at(s, token, tlen)) {
            if (n + sizeof(redacted) - 1 > limit) {
                cut = 1;
                break;
            }
            memcpy(out + n, redacted, sizeof(redacted) - 1);
            n += sizeof(redacted) - 1;
            s += tlen;
            continue;
        }
        if (n + 1 > limit) {
            cut = 1;
            break;
        }
        out[n++] = clean_byte(*s++);
    }
    if (cut)
        n = utf8_boundary(out, n);
    out[n] = '\0';
}

rd_status upstream_answer_transport(const char *subject, int result, const char *why,
                                    int64_t timeout_ms, rd_error *err)
{
    if (why == NULL)
        why = "unknown error";
    switch (result) {
    case HTTPC_ERR_TIMEOUT:
        return rd_fail(err, RD_ERR_UPSTREAM_TIMEOUT,
                       "Upstream timeout. (repository = %s, timeout_ms = %lld)", subject,
                       (long long)timeout_ms);
    case HTTPC_ERR_TOO_LARGE:
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                       "Bad upstream response. (repository = %s, reason = larger than "
                       "max_response_bytes)",
                       subject);
    case HTTPC_ERR_PROTOCOL:
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                       "Bad upstream response. (repository = %s, reason = %s)", subject, why);
    case HTTPC_ERR_TLS:
        return rd_fail(err, RD_ERR_UPSTREAM_UNAVAILABLE,
                       "Upstream unavailable. (repository = %s, reason = TLS: %s)", subject, why);
    default:
        return rd_fail(err, RD_ERR_UPSTREAM_UNAVAILABLE,
                       "Upstream unavailable. (repository = %s, reason = %s)", subject, why);
    }
}

rd_status upstream_answer_status(fetch_kind kind, const char *subject, int status,
                                 const json_t *body, const char *token, rd_error *err)
{
    /* The upstream relays its registry's answer about one plugin: that is
     * not the upstream being down. */
    static const rd_status relayed[] = {RD_ERR_REGISTRY_UNAVAILABLE, RD_ERR_REGISTRY_TIMEOUT,
                                        RD_ERR_REGISTRY_BAD_RESPONSE, RD_ERR_NO_IMAGE_IN_REGISTRY,
                                        RD_ERR_INVALID_PARAMETER};
    const json_t *detail = json_object_get(body, "detail");
    const char *code = json_string_value(json_object_get(detail, "code"));
    const char *msg = json_string_value(json_object_get(detail, "message"));
    char code_c[UPSTREAM_ANSWER_CODE_MAX + 1], msg_c[UPSTREAM_ANSWER_MESSAGE_MAX + 1];

    upstream_answer_clean(code != NULL ? code : "-", token, UPSTREAM_ANSWER_CODE_MAX, code_c,
                          sizeof(code_c));
    if (status == 404 && code != NULL &&
        (strcmp(code, "ERROR_NO_PLUGIN") == 0 || strcmp(code, "ERROR_NOT_FOUND") == 0) &&
        (kind == FETCH_PLUGIN || kind == FETCH_VERSIONS))
        return RD_ERR_NOT_FOUND;
    if (code != NULL && kind == FETCH_VERSIONS) {
        upstream_answer_clean(msg != NULL ? msg : code, token, UPSTREAM_ANSWER_MESSAGE_MAX, msg_c,
                              sizeof(msg_c));
        for (size_t i = 0; i < sizeof(relayed) / sizeof(relayed[0]); i++)
            if (strcmp(code, rd_status_name(relayed[i])) == 0)
                return rd_fail(err, relayed[i], "%s (repository = %s)", msg_c, subject);
    }
    if (status == 503)
        return rd_fail(err, RD_ERR_UPSTREAM_UNAVAILABLE,
                       "Upstream unavailable. (repository = %s, status = 503, code = %s)", subject,
                       code_c);
    return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                   "Bad upstream response. (repository = %s, status = %d, code = %s)", subject,
                   status, code_c);
}
