/* karl_example.c - tokenize an image with the KARL C API, then round-trip the tokens through
 * the .karl byte format and decode them.
 *
 *   karl_example MODEL IMAGE.rgb WIDTH HEIGHT [OUT.rgb]
 *
 * MODEL is a model directory (config.json + weights.safetensors) or checkpoint file;
 * IMAGE.rgb holds WIDTH*HEIGHT*3 bytes of 8-bit interleaved RGB. Prints the token count (KC),
 * the kept positions and their codes; writes the decoded image to OUT.rgb if given.
 * Build: cc -std=c11 -Wall -I include karl_example.c -L target/release -lkarl_ffi
 */
#include "karl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints the failed call, its status and the thread's last error message; returns 1. */
static int fail(const char *what, karl_status s) {
  char msg[1024];
  karl_last_error_message(msg, sizeof msg);
  fprintf(stderr, "%s failed: %s: %s\n", what, karl_status_name((int)s), msg);
  return 1;
}

/* Reads a whole file into a malloc'd buffer. */
static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
      buf = malloc(n > 0 ? (size_t)n : 1);
      if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
      }
      *len = (size_t)n;
    }
  }
  fclose(f);
  return buf;
}

static void print_list(const char *name, const uint32_t *v, size_t n) {
  printf("%s", name);
  for (size_t i = 0; i < n; i++) printf(" %u", (unsigned)v[i]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s MODEL IMAGE.rgb WIDTH HEIGHT [OUT.rgb]\n", argv[0]);
    return 2;
  }
  uint32_t width = (uint32_t)strtoul(argv[3], NULL, 10);
  uint32_t height = (uint32_t)strtoul(argv[4], NULL, 10);
  printf("libkarl %s (header %s)\n", karl_version(), KARL_VERSION);

  int rc = 1;
  karl_model *model = NULL;
  karl_tokens *tokens = NULL, *again = NULL;
  uint32_t *positions = NULL, *codes = NULL, *codes2 = NULL;
  uint8_t *bytes = NULL, *decoded = NULL;
  size_t image_len = 0;
  unsigned char *image = read_file(argv[2], &image_len);
  if (!image || image_len != (size_t)width * height * 3) {
    fprintf(stderr, "%s: cannot read %ux%u RGB bytes\n", argv[2], (unsigned)width, (unsigned)height);
    goto done;
  }

  karl_status s = karl_model_load(argv[1], &model);
  if (s != KARL_OK) { rc = fail("karl_model_load", s); goto done; }
  uint32_t mw = 0, mh = 0;
  s = karl_model_image_size(model, &mw, &mh);
  if (s != KARL_OK) { rc = fail("karl_model_image_size", s); goto done; }
  printf("model image size %ux%u\n", (unsigned)mw, (unsigned)mh);

  /* Adaptive tokenization: quality (mean absolute error) 0.05, at most 256 tokens. */
  s = karl_encode(model, image, width, height, (size_t)width * 3, 0.05f, 256, &tokens);
  if (s != KARL_OK) { rc = fail("karl_encode", s); goto done; }
  size_t kc = karl_tokens_count(tokens);
  printf("kc %zu\n", kc);
  positions = malloc((kc + 1) * sizeof *positions);
  codes = malloc((kc + 1) * sizeof *codes);
  codes2 = malloc((kc + 1) * sizeof *codes2);
  if (!positions || !codes || !codes2) goto done;
  if ((s = karl_tokens_positions(tokens, positions, kc)) != KARL_OK) { rc = fail("karl_tokens_positions", s); goto done; }
  if ((s = karl_tokens_codes(tokens, codes, kc)) != KARL_OK) { rc = fail("karl_tokens_codes", s); goto done; }
  print_list("positions", positions, kc);
  print_list("codes", codes, kc);

  /* Serialize: ask for the size first, then fill a buffer of that size. */
  size_t need = 0, written = 0;
  s = karl_tokens_serialize(tokens, NULL, 0, &need);
  if (s != KARL_BUFFER_TOO_SMALL) { rc = fail("karl_tokens_serialize (size query)", s); goto done; }
  bytes = malloc(need);
  if (!bytes) goto done;
  if ((s = karl_tokens_serialize(tokens, bytes, need, &written)) != KARL_OK) { rc = fail("karl_tokens_serialize", s); goto done; }
  printf("serialized %zu bytes\n", written);
  if ((s = karl_tokens_deserialize(bytes, written, &again)) != KARL_OK) { rc = fail("karl_tokens_deserialize", s); goto done; }
  if (karl_tokens_count(again) != kc) { fprintf(stderr, "round trip changed the token count\n"); goto done; }
  if ((s = karl_tokens_codes(again, codes2, kc)) != KARL_OK) { rc = fail("karl_tokens_codes", s); goto done; }
  if (kc > 0 && memcmp(codes, codes2, kc * sizeof *codes) != 0) { fprintf(stderr, "round trip changed the codes\n"); goto done; }

  /* Decode the deserialized tokens to an mw x mh RGB image. */
  size_t out_len = (size_t)mw * mh * 3;
  decoded = malloc(out_len);
  if (!decoded) goto done;
  if ((s = karl_decode(model, again, decoded, out_len)) != KARL_OK) { rc = fail("karl_decode", s); goto done; }
  double sum = 0;
  for (size_t i = 0; i < out_len; i++) sum += decoded[i];
  printf("decoded %ux%u mean %.3f\n", (unsigned)mw, (unsigned)mh, sum / (double)out_len);
  if (argc > 5) {
    FILE *f = fopen(argv[5], "wb");
    if (!f || fwrite(decoded, 1, out_len, f) != out_len) { fprintf(stderr, "cannot write %s\n", argv[5]); if (f) fclose(f); goto done; }
    fclose(f);
  }
  rc = 0;

done:
  /* Every handle is freed exactly once; free(NULL) and karl_*_free(NULL) are no-ops. */
  karl_tokens_free(again);
  karl_tokens_free(tokens);
  karl_model_free(model);
  free(decoded);
  free(bytes);
  free(codes2);
  free(codes);
  free(positions);
  free(image);
  return rc;
}
