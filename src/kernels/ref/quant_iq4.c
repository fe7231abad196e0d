// placeholder, being written.
typedef int ds_placeholder_quant_iq4;
