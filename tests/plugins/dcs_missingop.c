/* placeholder */
int pgkeel_placeholder_dcs_missingop(void);
int pgkeel_placeholder_dcs_missingop(void) { return 0; }
