/* karl_shards.c - read a token shard (.karlshard, from `karl tokenize` on a dataset) with the
 * KARL C API: list its images with their KC, find one by key, read and decode every record
 * (single images and tile grids), and check the error paths of the shard calls.
 *
 *   karl_shards MODEL SHARD KEY
 *
 * Prints "images N failures F", one "image KEY kc K tiles T decoded WxH" line per record,
 * "found KEY at I" and "N checks, F failures"; exits 1 on any failure.
 * Build: cc -std=c11 -Wall -I include karl_shards.c -L target/release -lkarl_ffi
 */
#include "karl.h"
#include "karl_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL SHARD KEY\n", argv[0]);
    return 2;
  }
  karl_model *model = NULL;
  karl_shard *shard = NULL, *none = NULL;
  karl_status s = karl_model_load(argv[1], &model);
  check(s == KARL_OK, "karl_model_load");
  if (s != KARL_OK) goto done;
  uint32_t ms = 0;
  check(karl_model_image_size(model, &ms, &ms) == KARL_OK, "karl_model_image_size");

  s = karl_shard_open(argv[2], &shard);
  check(s == KARL_OK, "karl_shard_open");
  if (s != KARL_OK) goto done;
  size_t n = karl_shard_count(shard);
  printf("images %zu failures %zu\n", n, karl_shard_failure_count(shard));

  for (size_t i = 0; i < n; i++) {
    size_t len = 0;
    check(karl_shard_key(shard, i, NULL, 0, &len) == KARL_BUFFER_TOO_SMALL && len > 0, "key size query");
    char *key = malloc(len + 1);
    if (!key) goto done;
    check(karl_shard_key(shard, i, key, len, &len) == KARL_BUFFER_TOO_SMALL, "key: no room for the NUL");
    check(karl_shard_key(shard, i, key, len + 1, &len) == KARL_OK && strlen(key) == len, "karl_shard_key");
    uint32_t kc = 0, tiles = 0;
    check(karl_shard_kc(shard, i, &kc, &tiles) == KARL_OK, "karl_shard_kc");
    karl_tokens *tokens = NULL;
    karl_tiled_tokens *tiled = NULL;
    check(karl_shard_read(shard, i, &tokens, &tiled) == KARL_OK, "karl_shard_read");
    check((tokens == NULL) != (tiled == NULL), "exactly one of tokens / tiled");
    uint32_t w = ms, h = ms;
    if (tiled) {
      uint32_t rows = 0, cols = 0, tile = 0;
      check(karl_tiled_grid(tiled, &rows, &cols, &tile, &w, &h) == KARL_OK, "karl_tiled_grid");
      check(rows * cols == tiles && karl_tiled_count(tiled) == kc, "tiled record matches the index");
    } else {
      check(tiles == 1 && karl_tokens_count(tokens) == kc, "record matches the index");
    }
    size_t bytes = (size_t)w * h * 3;
    uint8_t *rgb = malloc(bytes);
    if (!rgb) goto done;
    s = tiled ? karl_tiled_decode(model, tiled, rgb, bytes) : karl_decode(model, tokens, rgb, bytes);
    check(s == KARL_OK, "decode the record");
    printf("image %s kc %u tiles %u decoded %ux%u\n", key, (unsigned)kc, (unsigned)tiles, (unsigned)w,
           (unsigned)h);
    free(rgb);
    free(key);
    karl_tokens_free(tokens);
    karl_tiled_free(tiled);
  }

  size_t at = 0;
  check(karl_shard_find(shard, argv[3], &at) == KARL_OK && at < n, "karl_shard_find");
  printf("found %s at %zu\n", argv[3], at);

  /* bad calls */
  karl_tokens *t = NULL;
  karl_tiled_tokens *tt = NULL;
  size_t len = 0;
  check(karl_shard_open(NULL, &none) == KARL_NULL_ARGUMENT && none == NULL, "open: NULL path");
  check(karl_shard_open(argv[2], NULL) == KARL_NULL_ARGUMENT, "open: NULL out");
  check(karl_shard_open("/nonexistent/x.karlshard", &none) == KARL_IO && none == NULL, "open: missing file");
  check(karl_shard_open(argv[1], &none) != KARL_OK && none == NULL, "open: a folder");
  check(karl_shard_read(shard, n, &t, &tt) == KARL_INVALID_ARGUMENT && t == NULL && tt == NULL,
        "read: index out of range");
  check(karl_shard_read(shard, 0, NULL, &tt) == KARL_NULL_ARGUMENT, "read: NULL tokens");
  check(karl_shard_read(NULL, 0, &t, &tt) == KARL_NULL_ARGUMENT, "read: NULL shard");
  check(karl_shard_key(shard, n, NULL, 0, &len) == KARL_INVALID_ARGUMENT, "key: index out of range");
  check(karl_shard_find(shard, "no such key", &at) == KARL_INVALID_ARGUMENT, "find: unknown key");
  check(karl_shard_find(shard, NULL, &at) == KARL_NULL_ARGUMENT, "find: NULL key");
  check(karl_shard_kc(shard, n, NULL, NULL) == KARL_INVALID_ARGUMENT, "kc: index out of range");
  check(karl_shard_count(NULL) == 0, "count: NULL shard");
  karl_shard_free(NULL);

done:
  karl_shard_free(shard);
  karl_model_free(model);
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
