/* karl_tiles.c - tokenize an image of any size as a grid of model-size tiles with the KARL C
 * API, read the grid and the per-tile token counts, round-trip the tiled .karl bytes, decode
 * at full size, and check the error paths of the tiled calls.
 *
 *   karl_tiles MODEL WIDTH HEIGHT [OUT.rgb]
 *
 * The image is a synthetic gradient of WIDTH x HEIGHT pixels, stored with a padded stride.
 * Prints "grid ROWSxCOLS tile S", "tile_kc ...", "kc TOTAL", "decoded WxH" and
 * "N checks, F failures"; exits 1 on any failure.
 * Build: cc -std=c11 -Wall -I include karl_tiles.c -L target/release -lkarl_ffi
 */
#include "karl.h"
#include "karl_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL WIDTH HEIGHT [OUT.rgb]\n", argv[0]);
    return 2;
  }
  uint32_t width = (uint32_t)strtoul(argv[2], NULL, 10);
  uint32_t height = (uint32_t)strtoul(argv[3], NULL, 10);
  size_t stride = (size_t)width * 3 + 5; /* rows padded by 5 bytes */
  uint8_t *image = malloc(stride * height);
  karl_model *model = NULL;
  karl_tiled_tokens *tiled = NULL, *again = NULL, *bad = NULL;
  uint32_t *counts = NULL;
  uint8_t *bytes = NULL, *decoded = NULL;
  if (!image) return 1;
  for (uint32_t y = 0; y < height; y++)
    for (uint32_t x = 0; x < width; x++) {
      uint8_t *p = image + y * stride + x * 3;
      p[0] = (uint8_t)(255 * x / (width > 1 ? width - 1 : 1));
      p[1] = (uint8_t)(255 * y / (height > 1 ? height - 1 : 1));
      p[2] = (uint8_t)((x / 7 + y / 5) % 2 ? 200 : 40);
    }

  karl_status s = karl_model_load(argv[1], &model);
  check(s == KARL_OK, "karl_model_load");
  if (s != KARL_OK) goto done;
  uint32_t ms = 0;
  check(karl_model_image_size(model, &ms, NULL) == KARL_NULL_ARGUMENT, "image_size with NULL height");
  check(karl_model_image_size(model, &ms, &ms) == KARL_OK, "karl_model_image_size");

  s = karl_encode_tiled(model, image, width, height, stride, 0.05f, 8, &tiled);
  check(s == KARL_OK, "karl_encode_tiled");
  if (s != KARL_OK) goto done;
  uint32_t rows = 0, cols = 0, tile = 0, w = 0, h = 0;
  check(karl_tiled_grid(tiled, &rows, &cols, &tile, &w, &h) == KARL_OK, "karl_tiled_grid");
  check(rows == (height + ms - 1) / ms && cols == (width + ms - 1) / ms && tile == ms, "grid = ceil(size / tile)");
  check(w == width && h == height, "grid keeps the image size");
  printf("grid %ux%u tile %u\n", (unsigned)rows, (unsigned)cols, (unsigned)tile);
  size_t n = (size_t)rows * cols;
  counts = malloc(n * sizeof *counts);
  if (!counts) goto done;
  check(karl_tiled_tile_counts(tiled, counts, n - 1) == KARL_BUFFER_TOO_SMALL, "tile counts: short buffer");
  check(karl_tiled_tile_counts(tiled, counts, n) == KARL_OK, "karl_tiled_tile_counts");
  size_t sum = 0;
  printf("tile_kc");
  for (size_t i = 0; i < n; i++) {
    printf(" %u", (unsigned)counts[i]);
    sum += counts[i];
  }
  printf("\nkc %zu\n", karl_tiled_count(tiled));
  check(sum == karl_tiled_count(tiled), "total KC = sum over tiles");

  /* tiled .karl bytes: size query, round trip, and a corrupted copy */
  size_t need = 0, written = 0;
  check(karl_tiled_serialize(tiled, NULL, 0, &need) == KARL_BUFFER_TOO_SMALL && need > 18, "serialize size query");
  bytes = malloc(need);
  if (!bytes) goto done;
  check(karl_tiled_serialize(tiled, bytes, need, &written) == KARL_OK && written == need, "karl_tiled_serialize");
  check(karl_tiled_deserialize(bytes, written, &again) == KARL_OK, "karl_tiled_deserialize");
  check(karl_tiled_count(again) == karl_tiled_count(tiled), "round trip keeps KC");
  check(karl_tiled_deserialize(bytes, written - 1, &bad) == KARL_FORMAT && bad == NULL, "truncated bytes");
  bytes[written / 2] ^= 0x10;
  check(karl_tiled_deserialize(bytes, written, &bad) == KARL_FORMAT && bad == NULL, "corrupted bytes");
  check(karl_tokens_deserialize(bytes, written, NULL) == KARL_NULL_ARGUMENT, "single-image reader, NULL out");

  /* full-size decode */
  size_t out_len = (size_t)width * height * 3;
  decoded = malloc(out_len);
  if (!decoded) goto done;
  check(karl_tiled_decode(model, again, decoded, out_len - 1) == KARL_BUFFER_TOO_SMALL, "decode: short buffer");
  check(karl_tiled_decode(model, again, decoded, out_len) == KARL_OK, "karl_tiled_decode");
  double err = 0;
  for (uint32_t y = 0; y < height; y++)
    for (uint32_t x = 0; x < width * 3; x++) {
      int d = (int)decoded[(size_t)y * width * 3 + x] - (int)image[y * stride + x];
      err += d < 0 ? -d : d;
    }
  printf("decoded %ux%u l1 %.4f\n", (unsigned)width, (unsigned)height, err / 255.0 / (double)out_len);
  if (argc > 4) {
    FILE *f = fopen(argv[4], "wb");
    check(f && fwrite(decoded, 1, out_len, f) == out_len, "write OUT.rgb");
    if (f) fclose(f);
  }

  /* bad calls */
  karl_tiled_tokens *none = NULL;
  check(karl_encode_tiled(NULL, image, width, height, stride, 0.05f, 8, &none) == KARL_NULL_ARGUMENT, "NULL model");
  check(karl_encode_tiled(model, NULL, width, height, stride, 0.05f, 8, &none) == KARL_NULL_ARGUMENT, "NULL rgb");
  check(karl_encode_tiled(model, image, width, height, stride, 0.05f, 8, NULL) == KARL_NULL_ARGUMENT, "NULL out");
  check(karl_encode_tiled(model, image, width, height, 2, 0.05f, 8, &none) == KARL_INVALID_ARGUMENT, "short stride");
  check(karl_encode_tiled(model, image, width, height, stride, -1.0f, 8, &none) == KARL_INVALID_ARGUMENT, "bad quality");
  check(karl_encode_tiled(model, image, width, height, stride, 0.05f, 0, &none) == KARL_INVALID_ARGUMENT, "budget 0");
  check(karl_encode_tiled(model, image, 65536, 65536, stride, 0.05f, 8, &none) == KARL_INVALID_ARGUMENT,
        "grid above KARL_MAX_TILED_PIXELS");
  check(none == NULL, "failed calls leave *out alone");
  check(karl_tiled_count(NULL) == 0, "count of NULL");
  check(karl_tiled_grid(NULL, &rows, NULL, NULL, NULL, NULL) == KARL_NULL_ARGUMENT, "grid of NULL");
  check(karl_tiled_decode(model, NULL, decoded, out_len) == KARL_NULL_ARGUMENT, "decode NULL tokens");
  karl_tiled_free(NULL);

done:
  printf("%d checks, %d failures\n", checks, failures);
  karl_tiled_free(again);
  karl_tiled_free(tiled);
  karl_model_free(model);
  free(decoded);
  free(bytes);
  free(counts);
  free(image);
  return failures == 0 && checks > 20 ? 0 : 1;
}
