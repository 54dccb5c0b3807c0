/* placeholder: being written */
typedef int pgkeel_placeholder_dcs_loader;
