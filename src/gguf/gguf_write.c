// placeholder, being written.
typedef int ds_placeholder_gguf_write;
