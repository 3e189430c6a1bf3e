/*
 * usm.h: the C API of usm-infer (libusm). One header, no Swift type crosses it.
 *
 * Threads: a usm_recognizer is immutable once opened; any number of threads may call usm_transcribe_* and
 * usm_stream_create on it at once. A usm_stream is used by one thread at a time. Results, streams and recognizers
 * are freed by their own *_free function; strings returned through `error` by usm_string_free.
 *
 * Errors: every call that can fail returns a usm_status (0 = USM_OK; the other values are the command-line tools'
 * exit statuses) and, when `error` is not NULL, a message the caller frees with usm_string_free.
 */
#ifndef USM_H
#define USM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: usm_transcribe_encoded */
#define USM_API_VERSION 2

typedef enum usm_status {
    USM_OK = 0,
    USM_ERR_USAGE = 64,         /* invalid arguments or options (threads, beam over the limits, NULL pointers) */
    USM_ERR_INVALID_DATA = 65,  /* invalid model or audio data, input over a limit */
    USM_ERR_CANNOT_OPEN = 66,   /* a file cannot be opened or read */
    USM_ERR_INTERNAL = 70,      /* a call in the wrong state, or a bug */
} usm_status;

typedef enum usm_activations {
    USM_ACTIVATIONS_INT8_BLOCK = 0, /* default */
    USM_ACTIVATIONS_INT8_TOKEN = 1,
    USM_ACTIVATIONS_FLOAT = 2,
    USM_ACTIVATIONS_INT6_BIN = 3,
    USM_ACTIVATIONS_INT5_BIN = 4,
} usm_activations;

typedef struct usm_options {
    int32_t threads;      /* kernel threads per request, 1 ... 256 (default 1) */
    int32_t beam;         /* 1 = greedy search (default), up to 64 */
    int32_t activations;  /* usm_activations */
    double max_audio_seconds; /* longest input accepted; 0 = unlimited (default) */
} usm_options;

typedef struct usm_word {
    const char *word;
    double start, end;    /* seconds */
} usm_word;

typedef struct usm_result {
    const char *text;
    size_t n_words;
    const usm_word *words;
    size_t n_tokens;
    const int32_t *token_ids;
    const double *token_starts;  /* seconds */
    double audio_seconds;
    double compute_seconds;
    int32_t is_final;
    const char *json;            /* the whole result as JSON (text, tokens, words, timings, final) */
} usm_result;

typedef struct usm_recognizer usm_recognizer;
typedef struct usm_stream usm_stream;

/* The library version ("0.1.0") and USM_API_VERSION it was built with. */
const char *usm_version(void);
int32_t usm_api_version(void);

/* Defaults into *options. */
void usm_options_init(usm_options *options);

/* A recognizer from a model file, or from the bytes of one (copied). options may be NULL (defaults). */
usm_status usm_recognizer_open(const char *path, const usm_options *options, usm_recognizer **out, char **error);
usm_status usm_recognizer_open_bytes(const uint8_t *bytes, size_t count, const usm_options *options,
                                     usm_recognizer **out, char **error);
void usm_recognizer_free(usm_recognizer *recognizer);
/* The model's sample rate (inputs at any rate are resampled to it). */
int32_t usm_recognizer_sample_rate(const usm_recognizer *recognizer);

/* Offline recognition of mono samples at sample_rate: float in [-1, 1], or int16. */
usm_status usm_transcribe_f32(usm_recognizer *recognizer, const float *samples, size_t count, int32_t sample_rate,
                              usm_result **out, char **error);
usm_status usm_transcribe_s16(usm_recognizer *recognizer, const int16_t *samples, size_t count, int32_t sample_rate,
                              usm_result **out, char **error);
/* Offline recognition of an audio file (WAV, FLAC, MP3, OGG, ... at any rate and channel count, mixed to mono). */
usm_status usm_transcribe_file(usm_recognizer *recognizer, const char *path, usm_result **out, char **error);
/* Offline recognition of an audio file's bytes held in memory (any format usm_transcribe_file reads), copied before
 * it returns; nothing is written to disk. name (may be NULL) stands for the path in error messages. */
usm_status usm_transcribe_encoded(usm_recognizer *recognizer, const uint8_t *bytes, size_t count, const char *name,
                                  usm_result **out, char **error);
void usm_result_free(usm_result *result);

/* Streams: feed audio as it arrives, read partial results, finish for the final one. */
usm_status usm_stream_create(usm_recognizer *recognizer, int32_t input_sample_rate, usm_stream **out, char **error);
usm_status usm_stream_accept_f32(usm_stream *stream, const float *samples, size_t count, char **error);
usm_status usm_stream_accept_s16(usm_stream *stream, const int16_t *samples, size_t count, char **error);
usm_status usm_stream_partial(usm_stream *stream, usm_result **out, char **error);
/* 1 when the stream's endpoint rules (1.2 s of trailing silence after a token, 30 s utterances) say the utterance
   ended, else 0. */
int32_t usm_stream_is_endpoint(usm_stream *stream);
usm_status usm_stream_finish(usm_stream *stream, usm_result **out, char **error);
/* A new utterance on the same stream. */
void usm_stream_reset(usm_stream *stream);
void usm_stream_free(usm_stream *stream);

void usm_string_free(char *string);

#ifdef __cplusplus
}
#endif

#endif /* USM_H */
