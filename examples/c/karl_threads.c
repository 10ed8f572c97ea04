/* karl_threads.c - one karl_model shared by 4 threads encoding at the same time must give
 * exactly the tokens of sequential encodes.
 *
 *   karl_threads MODEL IMAGE.rgb WIDTH HEIGHT
 */
#include "karl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4

typedef struct job {
  const karl_model *model;
  const uint8_t *image;
  uint32_t width, height;
  float quality;
  uint32_t budget;
  uint8_t *bytes; /* serialized tokens (malloc'd), NULL on failure */
  size_t len;
  karl_status status;
  char message[512];
} job;

/* Encodes and serializes; run on a thread or inline. */
static void *run(void *arg) {
  job *j = arg;
  karl_tokens *t = NULL;
  j->status = karl_encode(j->model, j->image, j->width, j->height, (size_t)j->width * 3, j->quality, j->budget, &t);
  if (j->status == KARL_OK) {
    size_t need = 0;
    karl_tokens_serialize(t, NULL, 0, &need);
    j->bytes = malloc(need);
    j->status = j->bytes ? karl_tokens_serialize(t, j->bytes, need, &j->len) : KARL_INVALID_ARGUMENT;
  }
  if (j->status != KARL_OK) karl_last_error_message(j->message, sizeof j->message);
  karl_tokens_free(t);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s MODEL IMAGE.rgb WIDTH HEIGHT\n", argv[0]);
    return 2;
  }
  uint32_t w = (uint32_t)strtoul(argv[3], NULL, 10), h = (uint32_t)strtoul(argv[4], NULL, 10);
  size_t n = (size_t)w * h * 3;
  uint8_t *image = malloc(n);
  FILE *f = fopen(argv[2], "rb");
  if (!image || !f || fread(image, 1, n, f) != n) {
    fprintf(stderr, "cannot read %s\n", argv[2]);
    return 1;
  }
  fclose(f);
  karl_model *model = NULL;
  if (karl_model_load(argv[1], &model) != KARL_OK) {
    char msg[512];
    karl_last_error_message(msg, sizeof msg);
    fprintf(stderr, "load: %s\n", msg);
    return 1;
  }
  /* Two settings, alternating over the threads, so that cross-talk between calls shows. */
  const float quality[2] = {0.05f, 0.01f};
  const uint32_t budget[2] = {256, 128};
  job seq[2], par[THREADS];
  memset(seq, 0, sizeof seq);
  memset(par, 0, sizeof par);
  for (int k = 0; k < 2; k++) {
    seq[k] = (job){model, image, w, h, quality[k], budget[k], NULL, 0, KARL_OK, ""};
    run(&seq[k]);
  }
  pthread_t tid[THREADS];
  for (int i = 0; i < THREADS; i++) {
    par[i] = (job){model, image, w, h, quality[i % 2], budget[i % 2], NULL, 0, KARL_OK, ""};
    if (pthread_create(&tid[i], NULL, run, &par[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }
  for (int i = 0; i < THREADS; i++) pthread_join(tid[i], NULL);

  int rc = 0;
  for (int k = 0; k < 2; k++) {
    if (seq[k].status != KARL_OK) {
      fprintf(stderr, "sequential encode %d: %s: %s\n", k, karl_status_name((int)seq[k].status), seq[k].message);
      rc = 1;
    }
  }
  for (int i = 0; i < THREADS && rc == 0; i++) {
    const job *s = &seq[i % 2];
    if (par[i].status != KARL_OK) {
      fprintf(stderr, "thread %d: %s: %s\n", i, karl_status_name((int)par[i].status), par[i].message);
      rc = 1;
    } else if (par[i].len != s->len || memcmp(par[i].bytes, s->bytes, s->len) != 0) {
      fprintf(stderr, "thread %d: tokens differ from the sequential encode\n", i);
      rc = 1;
    } else {
      printf("thread %d: %zu bytes, identical to the sequential encode\n", i, par[i].len);
    }
  }
  for (int i = 0; i < THREADS; i++) free(par[i].bytes);
  for (int k = 0; k < 2; k++) free(seq[k].bytes);
  karl_model_free(model);
  free(image);
  if (rc == 0) printf("threads ok\n");
  return rc;
}
