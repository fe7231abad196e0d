// placeholder
typedef int ds_placeholder_malformed;
