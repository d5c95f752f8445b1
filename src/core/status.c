/*
 * status.c - the code -> HTTP status -> API error-code table.
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int http;
} status_table[RD_STATUS_COUNT] = {
    [RD_OK] = {"OK", 200},
    [RD_ERR_INVALID_JSON] = {"ERROR_INVALID_JSON", 400},
    [RD_ERR_REQUIRED_PARAMETER] = {"ERROR_REQUIRED_PARAMETER", 400},
    [RD_ERR_INVALID_PARAMETER] = {"ERROR_INVALID_PARAMETER", 400},
    [RD_ERR_INVALID_PARAMETER_TYPE] = {"ERROR_INVALID_PARAMETER_TYPE", 400},
    [RD_ERR_INVALID_IMAGE_LENGTH] = {"ERROR_INVALID_IMAGE_LENGTH", 400},
    [RD_ERR_INVALID_IMAGE_FORMAT] = {"ERROR_INVALID_IMAGE_FORMAT", 400},
    [RD_ERR_INVALID_TEMPLATE_SCHEMA] = {"ERROR_INVALID_TEMPLATE_SCHEMA", 400},
    [RD_ERR_INVALID_REGISTRY_TYPE] = {"ERROR_INVALID_REGISTRY_TYPE", 400},
    [RD_ERR_DB_QUERY] = {"ERROR_DB_QUERY", 400},
    [RD_ERR_OPERATOR_VALUE_TYPE] = {"ERROR_OPERATOR_VALUE_TYPE", 400},
    [RD_ERR_OPERATOR_LIST_VALUE_TYPE] = {"ERROR_OPERATOR_LIST_VALUE_TYPE", 400},
    [RD_ERR_OPERATOR_BOOLEAN_TYPE] = {"ERROR_OPERATOR_BOOLEAN_TYPE", 400},
    [RD_ERR_BAD_REQUEST] = {"ERROR_BAD_REQUEST", 400},
    [RD_ERR_AUTHENTICATE_FAILURE] = {"ERROR_AUTHENTICATE_FAILURE", 401},
    [RD_ERR_PERMISSION_DENIED] = {"ERROR_PERMISSION_DENIED", 403},
    [RD_ERR_NOT_FOUND] = {"ERROR_NOT_FOUND", 404},
    [RD_ERR_NO_PLUGIN] = {"ERROR_NO_PLUGIN", 404},
    [RD_ERR_NO_IMAGE_IN_REGISTRY] = {"ERROR_NO_IMAGE_IN_REGISTRY", 404},
    [RD_ERR_UNKNOWN_ROUTE] = {"ERROR_UNKNOWN_ROUTE", 404},
    [RD_ERR_METHOD_NOT_ALLOWED] = {"ERROR_METHOD_NOT_ALLOWED", 405},
    [RD_ERR_SAVE_UNIQUE_VALUES] = {"ERROR_SAVE_UNIQUE_VALUES", 409},
    [RD_ERR_NOT_LOCAL_PLUGIN] = {"ERROR_NOT_LOCAL_PLUGIN", 409},
    [RD_ERR_EXIST_RESOURCE] = {"ERROR_EXIST_RESOURCE", 409},
    [RD_ERR_REQUEST_TOO_LARGE] = {"ERROR_REQUEST_TOO_LARGE", 413},
    [RD_ERR_REQUEST_HEADER_TOO_LARGE] = {"ERROR_REQUEST_HEADER_TOO_LARGE", 431},
    [RD_ERR_TOO_MANY_REQUESTS] = {"ERROR_TOO_MANY_REQUESTS", 429},
    [RD_ERR_INTERNAL] = {"ERROR_INTERNAL", 500},
    [RD_ERR_UPSTREAM_BAD_RESPONSE] = {"ERROR_UPSTREAM_BAD_RESPONSE", 502},
    [RD_ERR_REGISTRY_BAD_RESPONSE] = {"ERROR_REGISTRY_BAD_RESPONSE", 502},
    [RD_ERR_UPSTREAM_UNAVAILABLE] = {"ERROR_UPSTREAM_UNAVAILABLE", 503},
    [RD_ERR_REGISTRY_UNAVAILABLE] = {"ERROR_REGISTRY_UNAVAILABLE", 503},
    [RD_ERR_UPSTREAM_TIMEOUT] = {"ERROR_UPSTREAM_TIMEOUT", 504},
    [RD_ERR_REGISTRY_TIMEOUT] = {"ERROR_REGISTRY_TIMEOUT", 504},
};

/* Cuts a UTF-8 sequence left incomplete at the end of s (a message
 * truncated by its buffer), so the message stays valid JSON text. */
static void trim_partial_utf8(char *s)
{
    size_t n = strlen(s), i = n, cont = 0;
    while (i > 0 && cont < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (lead >= 0x80 && need != cont)
        s[i - 1] = '\0';
    else if (lead < 0x80 && cont > 0)
        s[i] = '\0';
}

rd_status rd_fail(rd_error *err, rd_status code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        int n;
        err->code = code;
        va_start(ap, fmt);
        n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof(err->message))
            trim_partial_utf8(err->message);
    }
    return code;
}

void rd_error_clear(rd_error *err)
{
    if (err != NULL) {
        err->code = RD_OK;
        err->message[0] = '\0';
    }
}

const char *rd_status_name(rd_status code)
{
    if ((int)code < 0 || code >= RD_STATUS_COUNT || status_table[code].name == NULL)
        return "ERROR_INTERNAL";
    return status_table[code].name;
}

int rd_status_http(rd_status code)
{
    if ((int)code < 0 || code >= RD_STATUS_COUNT || status_table[code].name == NULL)
        return 500;
    return status_table[code].http;
}

const char *rd_http_reason(int http_status)
{
    switch (http_status) {
    case 200:
        return "OK";
    case 304:
        return "Not Modified";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}
