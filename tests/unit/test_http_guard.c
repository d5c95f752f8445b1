/*
 * test_http_guard.c - unit tests of the request-head guard of the edge
 * (src/edge/http_guard.c): bytes go into an evbuffer as a connection's
 * reads would put them, the test plays evhttp's part by consuming lines,
 * and checks what is left for evhttp and which request is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "../../src/edge/http_guard.h"

typedef struct {
    struct evbuffer *in;
    http_guard *g;
} fixture;

static int setup(void **state)
{
    static fixture f;
    f.in = evbuffer_new();
    f.g = http_guard_new(f.in, 1024, 10);
    assert_non_null(f.g);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    http_guard_free(f->g);
    evbuffer_free(f->in);
    return 0;
}

static void feed(fixture *f, const char *s)
{
    evbuffer_add(f->in, s, strlen(s));
}

/* The buffer now holds exactly want (len bytes, may contain NULs). */
static void assert_buffer(fixture *f, const char *want, size_t len)
{
    size_t n = evbuffer_get_length(f->in);
    assert_int_equal(n, len);
    assert_memory_equal(evbuffer_pullup(f->in, -1), want, len);
}

static void assert_next(fixture *f, rd_status want, const char *method, const char *path)
{
    const char *message = NULL, *m = NULL, *p = NULL;
    rd_status got = http_guard_next(f->g, &message, &m, &p);
    assert_int_equal(got, want);
    if (want != RD_OK) {
        assert_non_null(message);
        assert_string_equal(m, method);
        assert_string_equal(p, path);
    }
}

/* Good requests pass untouched, pipelined or not. */
static void test_good_stream_untouched(void **state)
{
    fixture *f = *state;
    const char *s = "POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
                    "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                    "GET /c HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    feed(f, s);
    assert_buffer(f, s, strlen(s));
    assert_next(f, RD_OK, NULL, NULL);
    assert_next(f, RD_OK, NULL, NULL);
    assert_next(f, RD_OK, NULL, NULL);
}

/* A second, different Content-Length: the head is cut before it and ends
 * with the body the first one announced, so evhttp reads no more. */
static void test_differing_content_length(void **state)
{
    fixture *f = *state;
    static const char want[] = "POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n\0";
    feed(f,
         "POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}GET / HTTP/1.1\r\n");
    assert_buffer(f, want, sizeof(want));
    assert_next(f, RD_ERR_BAD_REQUEST, "POST", "/x");
}

/* Lines evhttp already consumed stay consumed; the cut is where the bad
 * line starts. */
static void test_cut_after_consumed_lines(void **state)
{
    fixture *f = *state;
    static const char want[] = "X: y\r\n\r\n\0\0\0\0";
    size_t n;
    char *line;
    feed(f, "POST /x HTTP/1.1\r\nContent-Length: 5\r\n");
    for (int i = 0; i < 2; i++) { /* evhttp reads the two complete lines */
        line = evbuffer_readln(f->in, &n, EVBUFFER_EOL_CRLF);
        assert_non_null(line);
        free(line);
    }
    feed(f, "X: y\r\nTransfer-Encoding: chunked\r\n\r\nhello");
    assert_buffer(f, want, sizeof(want));
    assert_next(f, RD_ERR_BAD_REQUEST, "POST", "/x");
}

/* A declared body over the limit: 413 from the head. */
static void test_content_length_over_limit(void **state)
{
    fixture *f = *state;
    static const char want[] = "PUT /big HTTP/1.1\r\n\r\n";
    feed(f, "PUT /big HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
    assert_buffer(f, want, sizeof(want) - 1);
    assert_next(f, RD_ERR_REQUEST_TOO_LARGE, "PUT", "/big");
}

/* A request line alone over the head limit: replaced by a request that
 * evhttp dispatches at once. */
static void test_request_line_over_limit(void **state)
{
    fixture *f = *state;
    char big[1100];
    const char *message = NULL, *m = NULL, *p = NULL;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "GET /", 5);
    feed(f, big);
    assert_buffer(f, "GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(http_guard_next(f->g, &message, &m, &p), RD_ERR_REQUEST_HEADER_TOO_LARGE);
    assert_string_equal(m, "GET");
    assert_true(strncmp(p, "/aaaa", 5) == 0); /* as much of it as was kept */
}

/* Chunks adding up past the limit: the body ends after the last good chunk. */
static void test_chunked_over_limit(void **state)
{
    fixture *f = *state;
    static const char head[] =
        "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    char want[128];
    snprintf(want, sizeof(want), "%s0\r\n\r\n", head);
    feed(f, head);
    feed(f, "6\r\nworld!\r\n0\r\n\r\n");
    assert_buffer(f, want, strlen(want));
    assert_next(f, RD_ERR_REQUEST_TOO_LARGE, "POST", "/c");
}

/* Requests before the refused one on the connection are not refused. */
static void test_pipelined_refusal_index(void **state)
{
    fixture *f = *state;
    feed(f, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n Folded\r\n\r\n");
    assert_next(f, RD_OK, NULL, NULL);
    assert_next(f, RD_OK, NULL, NULL);
    assert_next(f, RD_ERR_BAD_REQUEST, "GET", "/3");
    assert_next(f, RD_OK, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_stream_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_differing_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_after_consumed_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_length_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_line_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_refusal_index, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
