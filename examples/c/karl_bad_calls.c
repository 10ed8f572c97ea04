/* karl_bad_calls.c - drives the KARL C API with bad arguments: NULL for every pointer argument
 * of every function, zero and huge sizes, short strides and buffers, garbage token bytes,
 * missing and truncated model files. Every call must return the documented status with a
 * non-empty message, leave its outputs alone, and never crash.
 *
 *   karl_bad_calls MODEL_DIR TRUNCATED_MODEL_DIR
 *
 * MODEL_DIR is a valid model; TRUNCATED_MODEL_DIR holds its config.json and a truncated
 * weights.safetensors. Exit status 0 when every check passes.
 */
#include "karl.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0, failures = 0;

/* Checks a call's status; for anything but KARL_OK also that a message was recorded, and for
 * KARL_OK that the message was cleared. */
static void expect(karl_status got, karl_status want, const char *call, int line) {
  checks++;
  size_t n = karl_last_error_message(NULL, 0);
  char msg[512];
  karl_last_error_message(msg, sizeof msg);
  if (got != want) {
    failures++;
    fprintf(stderr, "line %d: %s returned %s, expected %s (message: %s)\n", line, call,
            karl_status_name((int)got), karl_status_name((int)want), msg);
  } else if (want != KARL_OK && (n == 0 || msg[0] == '\0')) {
    failures++;
    fprintf(stderr, "line %d: %s returned %s without a message\n", line, call, karl_status_name((int)got));
  } else if (want == KARL_OK && n != 0) {
    failures++;
    fprintf(stderr, "line %d: %s succeeded but left the message \"%s\"\n", line, call, msg);
  } else if (getenv("KARL_BAD_CALLS_VERBOSE")) {
    printf("%-26s %s\n", karl_status_name((int)got), msg);
  }
}
#define EXPECT(call, want) expect((call), (want), #call, __LINE__)

static void check(int ok, const char *what, int line) {
  checks++;
  if (!ok) {
    failures++;
    fprintf(stderr, "line %d: check failed: %s\n", line, what);
  }
}
#define CHECK(cond) check((cond), #cond, __LINE__)

/* Out-parameters start as these values and must keep them when a call fails. */
#define MODEL_SENTINEL ((karl_model *)(uintptr_t)0x5a5a50)
#define TOKENS_SENTINEL ((karl_tokens *)(uintptr_t)0xa5a5a0)

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL_DIR TRUNCATED_MODEL_DIR\n", argv[0]);
    return 2;
  }
  const char *model_dir = argv[1], *truncated_dir = argv[2];

  /* --- version, status names, last error --- */
  CHECK(strcmp(karl_version(), KARL_VERSION) == 0);
  CHECK(strcmp(karl_status_name(KARL_OK), "KARL_OK") == 0);
  CHECK(strcmp(karl_status_name(KARL_NO_DEFAULT_MODEL), "KARL_NO_DEFAULT_MODEL") == 0);
  CHECK(strcmp(karl_status_name(-1), "KARL_UNKNOWN_STATUS") == 0);
  CHECK(strcmp(karl_status_name(1000), "KARL_UNKNOWN_STATUS") == 0);
  CHECK(karl_last_error_message(NULL, 0) == 0);
  CHECK(karl_last_error_message(NULL, 100) == 0);

  /* --- loading --- */
  karl_model *m = MODEL_SENTINEL;
  EXPECT(karl_model_load(NULL, &m), KARL_NULL_ARGUMENT);
  CHECK(karl_last_error_message(NULL, 0) > 0);
  {
    char tiny[4] = {'x', 'x', 'x', 'x'};
    size_t n = karl_last_error_message(tiny, sizeof tiny); /* truncated, NUL-terminated */
    CHECK(n > 3 && tiny[3] == '\0' && strlen(tiny) == 3);
    char untouched = 'u';
    karl_last_error_message(&untouched, 0);
    CHECK(untouched == 'u');
  }
  EXPECT(karl_model_load(model_dir, NULL), KARL_NULL_ARGUMENT);
  EXPECT(karl_model_load("/nonexistent/karl/model", &m), KARL_IO);
  EXPECT(karl_model_load("", &m), KARL_IO);
  EXPECT(karl_model_load(truncated_dir, &m), KARL_FORMAT);
  {
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", model_dir);
    EXPECT(karl_model_load(cfg, &m), KARL_FORMAT); /* a JSON file is no checkpoint */
  }
  EXPECT(karl_model_load_on(NULL, "cpu", &m), KARL_NULL_ARGUMENT);
  EXPECT(karl_model_load_on(model_dir, "cpu", NULL), KARL_NULL_ARGUMENT);
  EXPECT(karl_model_load_on(model_dir, "gpu", &m), KARL_INVALID_ARGUMENT); /* unknown device */
  EXPECT(karl_model_load_on("/nonexistent/karl/model", "cpu", &m), KARL_IO);
  CHECK(m == MODEL_SENTINEL);
  EXPECT(karl_model_load_on(model_dir, "cpu", &m), KARL_OK);
  CHECK(m != MODEL_SENTINEL && m != NULL);
  karl_model_free(m);
  m = MODEL_SENTINEL;
  EXPECT(karl_model_load_default(NULL), KARL_NULL_ARGUMENT);
  EXPECT(karl_model_load_default(&m), KARL_OK); /* the built-in model */
  CHECK(m != MODEL_SENTINEL && m != NULL);
  karl_model_free(m);
  m = MODEL_SENTINEL; /* the failing calls below must leave it untouched */
  {
    const uint8_t garbage[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    EXPECT(karl_model_load_from_memory(NULL, 16, "{}", &m), KARL_NULL_ARGUMENT);
    EXPECT(karl_model_load_from_memory(NULL, 0, NULL, &m), KARL_NULL_ARGUMENT);
    EXPECT(karl_model_load_from_memory(garbage, sizeof garbage, "{}", NULL), KARL_NULL_ARGUMENT);
    EXPECT(karl_model_load_from_memory(garbage, sizeof garbage, "{}", &m), KARL_FORMAT);
    EXPECT(karl_model_load_from_memory(garbage, sizeof garbage, NULL, &m), KARL_FORMAT);
    EXPECT(karl_model_load_from_memory(garbage, 0, NULL, &m), KARL_FORMAT);
    EXPECT(karl_model_load_from_memory(garbage, SIZE_MAX, NULL, &m), KARL_INVALID_ARGUMENT);
  }
  CHECK(m == MODEL_SENTINEL);
  karl_model_free(NULL);

  m = NULL;
  EXPECT(karl_model_load(model_dir, &m), KARL_OK);
  if (!m) {
    fprintf(stderr, "cannot load %s; stopping\n", model_dir);
    return 1;
  }

  /* --- image size --- */
  uint32_t w = 7, h = 7;
  EXPECT(karl_model_image_size(NULL, &w, &h), KARL_NULL_ARGUMENT);
  EXPECT(karl_model_image_size(m, NULL, &h), KARL_NULL_ARGUMENT);
  EXPECT(karl_model_image_size(m, &w, NULL), KARL_NULL_ARGUMENT);
  CHECK(w == 7 && h == 7);
  EXPECT(karl_model_image_size(m, &w, &h), KARL_OK);
  CHECK(w > 0 && h == w);

  /* --- VAE latent draw (this model has no VAE base) --- */
  EXPECT(karl_model_set_vae_latent(NULL, KARL_VAE_LATENT_MODE, 0), KARL_NULL_ARGUMENT);
  EXPECT(karl_model_set_vae_latent(m, 7, 0), KARL_INVALID_ARGUMENT);
  EXPECT(karl_model_set_vae_latent(m, KARL_VAE_LATENT_SAMPLE, 1), KARL_INVALID_ARGUMENT);

  /* --- encode --- */
  const uint32_t S = w;
  const size_t stride = (size_t)S * 3;
  uint8_t *img = malloc(stride * S);
  if (!img) return 1;
  for (size_t i = 0; i < stride * S; i++) img[i] = (uint8_t)(i * 7 + i / stride);
  karl_tokens *t = TOKENS_SENTINEL;
  EXPECT(karl_encode(NULL, img, S, S, stride, 0.05f, 16, &t), KARL_NULL_ARGUMENT);
  EXPECT(karl_encode(m, NULL, S, S, stride, 0.05f, 16, &t), KARL_NULL_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, 0.05f, 16, NULL), KARL_NULL_ARGUMENT);
  /* Pointers are checked before everything else. */
  EXPECT(karl_encode(m, NULL, 0, 0, 0, NAN, 0, &t), KARL_NULL_ARGUMENT);
  EXPECT(karl_encode(NULL, NULL, 0, 0, 0, NAN, 0, NULL), KARL_NULL_ARGUMENT);
  EXPECT(karl_encode(m, img, 0, S, stride, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, 0, stride, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, UINT32_MAX, S, stride, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, UINT32_MAX, stride, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, KARL_MAX_IMAGE_SIDE + 1, 1, SIZE_MAX, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride - 1, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, 0, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, SIZE_MAX, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, SIZE_MAX / 2, 0.05f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, 0.0f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, -0.5f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, 1.5f, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, NAN, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, INFINITY, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, 0.05f, 0, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, 0.05f, 513, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode(m, img, S, S, stride, 0.05f, UINT32_MAX, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode_fixed(NULL, img, S, S, stride, 16, &t), KARL_NULL_ARGUMENT);
  EXPECT(karl_encode_fixed(m, NULL, S, S, stride, 16, &t), KARL_NULL_ARGUMENT);
  EXPECT(karl_encode_fixed(m, img, S, S, stride, 16, NULL), KARL_NULL_ARGUMENT);
  EXPECT(karl_encode_fixed(m, img, 0, 0, 0, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode_fixed(m, img, S, S, 3, 16, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode_fixed(m, img, S, S, stride, 0, &t), KARL_INVALID_ARGUMENT);
  EXPECT(karl_encode_fixed(m, img, S, S, stride, 100000, &t), KARL_INVALID_ARGUMENT);
  CHECK(t == TOKENS_SENTINEL);

  /* One valid token set (fixed length 16: the cheapest encode) for the calls below. */
  t = NULL;
  EXPECT(karl_encode_fixed(m, img, S, S, stride, 16, &t), KARL_OK);
  if (!t) {
    fprintf(stderr, "cannot encode; stopping\n");
    return 1;
  }
  const size_t kc = karl_tokens_count(t);
  CHECK(kc == 16);

  /* --- token accessors --- */
  CHECK(karl_tokens_count(NULL) == 0);
  CHECK(karl_last_error_message(NULL, 0) > 0);
  uint32_t vals[32];
  for (int i = 0; i < 32; i++) vals[i] = 0xdeadbeef;
  EXPECT(karl_tokens_positions(NULL, vals, 32), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_positions(t, NULL, 32), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_positions(t, NULL, 0), KARL_BUFFER_TOO_SMALL);
  EXPECT(karl_tokens_positions(t, vals, kc - 1), KARL_BUFFER_TOO_SMALL);
  EXPECT(karl_tokens_positions(t, vals, SIZE_MAX), KARL_INVALID_ARGUMENT);
  EXPECT(karl_tokens_codes(NULL, vals, 32), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_codes(t, NULL, 32), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_codes(t, NULL, 0), KARL_BUFFER_TOO_SMALL);
  EXPECT(karl_tokens_codes(t, vals, kc - 1), KARL_BUFFER_TOO_SMALL);
  EXPECT(karl_tokens_codes(t, vals, SIZE_MAX / 2), KARL_INVALID_ARGUMENT);
  CHECK(vals[0] == 0xdeadbeef && vals[31] == 0xdeadbeef);
  EXPECT(karl_tokens_positions(t, vals, 32), KARL_OK);
  CHECK(vals[0] == 0 && vals[kc - 1] == kc - 1 && vals[kc] == 0xdeadbeef);
  EXPECT(karl_tokens_codes(t, vals, kc), KARL_OK);

  /* --- serialize --- */
  size_t need = 0, written = 12345;
  uint8_t small[8] = {0};
  EXPECT(karl_tokens_serialize(NULL, small, sizeof small, &written), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_serialize(t, small, sizeof small, NULL), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_serialize(t, NULL, 64, &written), KARL_NULL_ARGUMENT);
  CHECK(written == 12345);
  EXPECT(karl_tokens_serialize(t, NULL, 0, &need), KARL_BUFFER_TOO_SMALL);
  CHECK(need > sizeof small);
  EXPECT(karl_tokens_serialize(t, small, sizeof small, &written), KARL_BUFFER_TOO_SMALL);
  CHECK(written == need && small[0] == 0);
  EXPECT(karl_tokens_serialize(t, small, SIZE_MAX, &written), KARL_INVALID_ARGUMENT);
  uint8_t *bytes = malloc(need + 1);
  if (!bytes) return 1;
  EXPECT(karl_tokens_serialize(t, bytes, need + 1, &written), KARL_OK);
  CHECK(written == need);

  /* --- deserialize --- */
  karl_tokens *t2 = TOKENS_SENTINEL;
  const uint8_t garbage[] = "this is not a KARL token file at all";
  EXPECT(karl_tokens_deserialize(NULL, need, &t2), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_deserialize(NULL, 0, &t2), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_deserialize(bytes, need, NULL), KARL_NULL_ARGUMENT);
  EXPECT(karl_tokens_deserialize(garbage, sizeof garbage, &t2), KARL_FORMAT);
  EXPECT(karl_tokens_deserialize(bytes, 0, &t2), KARL_FORMAT);
  EXPECT(karl_tokens_deserialize(bytes, need - 1, &t2), KARL_FORMAT);
  EXPECT(karl_tokens_deserialize(bytes, need / 2, &t2), KARL_FORMAT);
  EXPECT(karl_tokens_deserialize(bytes, SIZE_MAX, &t2), KARL_INVALID_ARGUMENT);
  bytes[need / 2] ^= 0x40; /* corrupt the payload: the checksum must catch it */
  EXPECT(karl_tokens_deserialize(bytes, need, &t2), KARL_FORMAT);
  bytes[need / 2] ^= 0x40;
  bytes[8] = 99; /* another format version */
  EXPECT(karl_tokens_deserialize(bytes, need, &t2), KARL_FORMAT);
  bytes[8] = 1;
  CHECK(t2 == TOKENS_SENTINEL);
  t2 = NULL;
  EXPECT(karl_tokens_deserialize(bytes, need, &t2), KARL_OK);
  CHECK(karl_tokens_count(t2) == kc);
  karl_tokens_free(t2);
  karl_tokens_free(NULL);

  /* --- decode --- */
  const size_t out_len = (size_t)S * S * 3;
  uint8_t *out = malloc(out_len);
  if (!out) return 1;
  memset(out, 0x77, out_len);
  EXPECT(karl_decode(NULL, t, out, out_len), KARL_NULL_ARGUMENT);
  EXPECT(karl_decode(m, NULL, out, out_len), KARL_NULL_ARGUMENT);
  EXPECT(karl_decode(m, t, NULL, out_len), KARL_NULL_ARGUMENT);
  EXPECT(karl_decode(m, t, NULL, 0), KARL_BUFFER_TOO_SMALL);
  EXPECT(karl_decode(m, t, out, out_len - 1), KARL_BUFFER_TOO_SMALL);
  EXPECT(karl_decode(m, t, out, 3), KARL_BUFFER_TOO_SMALL);
  EXPECT(karl_decode(m, t, out, SIZE_MAX), KARL_INVALID_ARGUMENT);
  CHECK(out[0] == 0x77 && out[out_len - 1] == 0x77);

  free(out);
  free(bytes);
  free(img);
  karl_tokens_free(t);
  karl_model_free(m);
  printf("%d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
