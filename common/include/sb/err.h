/* Error codes shared by every module of the common library and the services.
 * Functions return 0 on success or one of these negative codes. */
#ifndef SB_ERR_H
#define SB_ERR_H

enum sb_err {
    SB_OK = 0,
    SB_E_INVAL = -1,    /* invalid argument or input */
    SB_E_NOENT = -2,    /* not found */
    SB_E_IO = -3,       /* I/O or connection failure (transient) */
    SB_E_TIMEOUT = -4,  /* timed out (transient) */
    SB_E_FATAL = -5,    /* unrecoverable: drain and exit */
    SB_E_TOOBIG = -6,   /* input exceeds a limit */
    SB_E_STATE = -7,    /* operation not valid in the current state */
    SB_E_CONFLICT = -8, /* duplicate or conflicting effect */
    SB_E_UNAVAIL = -9,  /* a dependency is down */
    SB_E_PARSE = -10,   /* input is not parseable at all (e.g. not JSON) */
};

/* Returns a static, human-readable description of an sb_err code. */
const char *sb_strerror(int err);

#endif
