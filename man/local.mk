# man/: roff pages, shipped in the tarball.
dist_man_MANS += man/pgkeel.8 man/pgkeel.yml.5
