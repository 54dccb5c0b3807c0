/* placeholder */
int pgkeel_placeholder_dcs_badabi(void);
int pgkeel_placeholder_dcs_badabi(void) { return 0; }
