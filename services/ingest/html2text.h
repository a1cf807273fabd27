/* Reduces HTML to plain text for messages that have no text part: tags removed,
 * <script> and <style> contents dropped, block ends turned into newlines, the common
 * entities and numeric character references decoded, runs of blank lines collapsed.
 * Pure logic; input is UTF-8. */
#ifndef SB_INGEST_HTML2TEXT_H
#define SB_INGEST_HTML2TEXT_H

#include <stddef.h>

/* Returns a new NUL-terminated UTF-8 string (free()) of at most max_out bytes. */
char *sb_html_to_text(const char *html, size_t len, size_t max_out);

#endif
