/* placeholder: being written */
typedef int pgkeel_placeholder_yaml_load;
