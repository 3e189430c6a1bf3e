/* The C API end to end: usm-infer's transcript of a file through libusm, from the file, from int16 and float
 * samples, from a stream in chunks, from four threads at once; errors with their statuses.
 *   test_capi MODEL WAV EXPECTED_TEXT        (WAV: 16-bit PCM mono; EXPECTED_TEXT: what usm-infer printed) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usm.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* The samples of a canonical 44-byte-header 16-bit PCM mono WAV. */
static int16_t *read_wav(const char *path, size_t *count, int *rate) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char h[44];
    if (fread(h, 1, 44, f) != 44) { fclose(f); return NULL; }
    *rate = h[24] | h[25] << 8 | h[26] << 16 | h[27] << 24;
    size_t bytes = (size_t)(h[40] | h[41] << 8 | h[42] << 16 | (size_t)h[43] << 24);
    int16_t *s = malloc(bytes);
    *count = fread(s, 2, bytes / 2, f);
    fclose(f);
    return s;
}

struct job { usm_recognizer *r; const int16_t *s; size_t n; int rate; const char *expected; int ok; };

static void *run_job(void *p) {
    struct job *j = p;
    usm_result *res = NULL;
    j->ok = usm_transcribe_s16(j->r, j->s, j->n, j->rate, &res, NULL) == USM_OK && strcmp(res->text, j->expected) == 0;
    usm_result_free(res);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: test_capi MODEL WAV EXPECTED_TEXT\n"); return 64; }
    const char *model = argv[1], *wav = argv[2], *expected = argv[3];
    CHECK(usm_api_version() == USM_API_VERSION, "api version %d", usm_api_version());
    CHECK(strlen(usm_version()) > 0, "version");

    char *err = NULL;
    usm_recognizer *r = NULL;
    CHECK(usm_recognizer_open("/nonexistent.usm", NULL, &r, &err) == USM_ERR_CANNOT_OPEN && r == NULL && err, "missing model");
    usm_string_free(err); err = NULL;
    usm_options o;
    usm_options_init(&o);
    o.beam = 100000;
    CHECK(usm_recognizer_open(model, &o, &r, &err) == USM_ERR_USAGE && err && strstr(err, "beam"), "beam over the limit: %s", err ? err : "");
    usm_string_free(err); err = NULL;
    usm_options_init(&o);
    CHECK(usm_recognizer_open(model, &o, &r, &err) == USM_OK && r, "open: %s", err ? err : "");
    if (!r) return 1;
    CHECK(usm_recognizer_sample_rate(r) == 16000, "sample rate");

    usm_result *res = NULL;
    CHECK(usm_transcribe_file(r, wav, &res, &err) == USM_OK, "file: %s", err ? err : "");
    CHECK(res && strcmp(res->text, expected) == 0, "file text '%s', usm-infer said '%s'", res ? res->text : "", expected);
    CHECK(res && res->is_final == 1 && res->n_tokens > 0 && res->audio_seconds > 3.0 && strstr(res->json, "\"text\""), "result fields");
    if (res && res->n_words > 0) CHECK(res->words[0].end > res->words[0].start, "word times");
    usm_result_free(res); res = NULL;

    /* the file's bytes, decoded from memory; bytes that are no audio name the caller's label */
    FILE *fp = fopen(wav, "rb");
    CHECK(fp != NULL, "open %s", wav);
    if (!fp) return 1;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *bytes = malloc((size_t)size);
    CHECK(bytes && fread(bytes, 1, (size_t)size, fp) == (size_t)size, "read %s", wav);
    fclose(fp);
    CHECK(usm_transcribe_encoded(r, bytes, (size_t)size, "sample.wav", &res, &err) == USM_OK && res && strcmp(res->text, expected) == 0,
          "encoded '%s' %s", res ? res->text : "", err ? err : "");
    usm_result_free(res); res = NULL;
    CHECK(usm_transcribe_encoded(r, bytes, 16, "upload.wav", &res, &err) == USM_ERR_INVALID_DATA && res == NULL && err &&
          strstr(err, "upload.wav"), "cut to 16 bytes: %s", err ? err : "");
    usm_string_free(err); err = NULL;
    CHECK(usm_transcribe_encoded(r, NULL, 0, NULL, &res, &err) == USM_ERR_USAGE, "NULL bytes");
    usm_string_free(err); err = NULL;
    free(bytes);

    size_t n = 0; int rate = 0;
    int16_t *s = read_wav(wav, &n, &rate);
    CHECK(s && n > 0 && rate == 16000, "read %s", wav);
    if (!s) return 1;
    CHECK(usm_transcribe_s16(r, s, n, rate, &res, &err) == USM_OK && strcmp(res->text, expected) == 0, "s16 '%s'", res ? res->text : "");
    usm_result_free(res); res = NULL;
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = s[i] / 32768.0f;
    CHECK(usm_transcribe_f32(r, f, n, rate, &res, &err) == USM_OK && strcmp(res->text, expected) == 0, "f32 '%s'", res ? res->text : "");
    usm_result_free(res); res = NULL;
    f[10] = 0.0f / 0.0f;  /* NaN: invalid data */
    CHECK(usm_transcribe_f32(r, f, n, rate, &res, &err) == USM_ERR_INVALID_DATA && res == NULL && err, "NaN sample");
    usm_string_free(err); err = NULL;

    /* a stream in 100 ms chunks gives the offline transcript */
    usm_stream *st = NULL;
    CHECK(usm_stream_create(r, rate, &st, &err) == USM_OK && st, "stream");
    for (size_t at = 0; at < n; at += 1600) {
        size_t m = n - at < 1600 ? n - at : 1600;
        CHECK(usm_stream_accept_s16(st, s + at, m, &err) == USM_OK, "accept");
        usm_result *p = NULL;
        CHECK(usm_stream_partial(st, &p, NULL) == USM_OK && p->is_final == 0, "partial");
        usm_result_free(p);
    }
    CHECK(usm_stream_finish(st, &res, &err) == USM_OK && strcmp(res->text, expected) == 0, "stream '%s'", res ? res->text : "");
    usm_result_free(res); res = NULL;
    CHECK(usm_stream_accept_s16(st, s, 10, &err) == USM_ERR_INTERNAL && err, "audio after finish");
    usm_string_free(err); err = NULL;
    usm_stream_reset(st);
    CHECK(usm_stream_accept_s16(st, s, n, &err) == USM_OK, "after reset");
    CHECK(usm_stream_finish(st, &res, &err) == USM_OK && strcmp(res->text, expected) == 0, "after reset '%s'", res ? res->text : "");
    usm_result_free(res); res = NULL;
    usm_stream_free(st);

    /* one recognizer, four threads */
    pthread_t t[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){ r, s, n, rate, expected, 0 };
        pthread_create(&t[i], NULL, run_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) { pthread_join(t[i], NULL); CHECK(jobs[i].ok, "thread %d", i); }

    CHECK(usm_transcribe_s16(NULL, s, n, rate, &res, NULL) == USM_ERR_USAGE, "NULL recognizer");
    free(f);
    free(s);
    usm_recognizer_free(r);
    printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}
