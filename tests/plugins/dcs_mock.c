/* placeholder */
int pgkeel_placeholder_dcs_mock(void);
int pgkeel_placeholder_dcs_mock(void) { return 0; }
