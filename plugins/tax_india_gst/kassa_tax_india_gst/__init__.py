"""India GST for Kassa: GSTIN validation, CGST+SGST or IGST by place of supply."""
