/* placeholder: being written */
typedef int pgkeel_placeholder_config_env;
