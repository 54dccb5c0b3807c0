/* placeholder */
int pgkeel_placeholder_dcs_noentry(void);
int pgkeel_placeholder_dcs_noentry(void) { return 0; }
