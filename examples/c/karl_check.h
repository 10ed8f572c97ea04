/* karl_check.h - the check counter the KARL C examples share: check(ok, what) counts one check
 * and, when it fails, prints what failed with the library's last error message. Each example
 * prints "N checks, F failures" from `checks` and `failures` at its end.
 */
#ifndef KARL_CHECK_H
#define KARL_CHECK_H

#include "karl.h"

#include <stdio.h>

static int checks = 0, failures = 0;

/* Records one check; prints the last error when it fails. */
static void check(int ok, const char *what) {
  checks++;
  if (!ok) {
    char msg[1024];
    karl_last_error_message(msg, sizeof msg);
    fprintf(stderr, "FAILED: %s (last error: %s)\n", what, msg);
    failures++;
  }
}

#endif
