# man/: roff pages, shipped in the tarball.
dist_man_MANS += man/pgkeel.8 man/pgkeel.yml.5
dist_man_MANS += man/pgkeel-dcs.7
dist_man_MANS += man/pgkeelctl.1
