/* Reduces HTML to plain text for messages that have no text part: tags removed,
 * <script>, <style> and <title> contents dropped, line breaks where the layout has
 * them (<br>, paragraphs, divisions, list items, table rows), the common named entities
 * and numeric character references decoded, white space collapsed as a browser does,
 * runs of blank lines collapsed. Pure logic. */
#ifndef SB_INGEST_HTML2TEXT_H
#define SB_INGEST_HTML2TEXT_H

#include <stddef.h>

/* Reduces the len bytes of html (borrowed, need not be NUL-terminated; expected UTF-8,
 * invalid sequences become U+FFFD) to text. Returns a new NUL-terminated string of
 * valid UTF-8 and at most max_out bytes (the caller frees it with free()); output
 * that would pass max_out stops before the first character that does not fit. Runs
 * in time linear in len. Thread-safe. */
char *sb_html_to_text(const char *html, size_t len, size_t max_out);

#endif
