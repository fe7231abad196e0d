// placeholder, being written.
typedef int ds_placeholder_iq_tables_data;
