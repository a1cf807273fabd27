/* 5W1H extraction and masking of personal data in customer text (SPEC.md §1, §2).
 * Pure logic on UTF-8 text, Chinese and English; no I/O, no allocation beyond what
 * the caller passes. What the customer did not say stays empty: nothing is invented. */
#ifndef SB_TRIAGE_EXTRACT_H
#define SB_TRIAGE_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

/* Desired outcomes (the "why" of 5W1H). */
enum sb_outcome {
    SB_OUTCOME_NONE = 0,
    SB_OUTCOME_REFUND,
    SB_OUTCOME_EXCHANGE,
    SB_OUTCOME_GUIDANCE,
    SB_OUTCOME_APOLOGY,
    SB_OUTCOME_COMPENSATION,
};

/* What was found; every string field is "" when absent. */
struct sb_extract {
    char order_no[48];   /* the order number the customer quoted */
    int has_amount;      /* 1 when an amount was found */
    double amount;       /* the largest amount quoted, in units of currency */
    char currency[4];    /* ISO 4217 ("CNY", "USD", "EUR", "GBP", …); "" when unsaid */
    char when[40];       /* "2024-05-20T14" when an hour could be resolved, else "2024-05-20" */
    char when_words[64]; /* the customer's words for the time, e.g. "yesterday 2pm" */
    char page[64];       /* app page / screen, e.g. "checkout page", "支付页面" */
    char os[32];         /* e.g. "iOS 17.2", "Android 14", "Windows 11" */
    char device[48];     /* e.g. "iPhone 15", "Huawei P60", "iPad" */
    enum sb_outcome outcome;
    char error_text[128]; /* quoted error text or code, e.g. "E1023", "account abnormal" */
};

/* Extracts from text (len bytes of UTF-8, need not be NUL-terminated). Relative
 * times ("yesterday 2pm", "昨天下午2点", "today") resolve against ref_ms (ms since the
 * epoch, the contact's received time) in the time zone tz_offset_min minutes east of
 * UTC. Never fails: returns the number of fields found. */
int sb_extract_text(const char *text, size_t len, int64_t ref_ms, int tz_offset_min,
                    struct sb_extract *out);

/* "refund", "exchange", "guidance", "apology", "compensation"; "" for NONE. */
const char *sb_outcome_name(enum sb_outcome o);

/* Masks personal data in text: mainland mobile phones ("13812345678" and spaced or
 * +86 forms → "138****5678"), other phone numbers of 8+ digits (all but the last 4
 * digits starred), emails ("wang.lei@example.com" → "w***@example.com"), 18-character
 * ID numbers (first 6 and last 4 kept), and card numbers of 13–19 digits (spaces or
 * dashes allowed) that pass the Luhn check (last 4 kept). Order numbers that are not
 * Luhn-valid and not phone-shaped are left alone. Writes a NUL-terminated result of at
 * most outsz-1 bytes (never cutting a UTF-8 sequence) and returns the number of
 * values masked. in and out must not overlap. */
int sb_mask_text(const char *in, size_t len, char *out, size_t outsz);

/* 1 when the digits of s (len bytes, digits only) pass the Luhn check. */
int sb_luhn_valid(const char *digits, size_t len);

#endif
