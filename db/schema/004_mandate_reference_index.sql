-- Attaching an existing mandate (POST /v1/site-payment-mandates with
-- mandateReference) looks for sites that already use the reference.
ALTER TABLE site_payment_mandates ADD KEY mandate_reference (mandate_reference);
