/*
 * Reference data in bulk: the JSON loader (`pay-api load`) and the
 * benchmark data generator (`pay-api generate`). Both write through the
 * same tables and ledger rules as the API, in transactions.
 */
#ifndef PAY_DB_DB_LOAD_H
#define PAY_DB_DB_LOAD_H

/* Loads a document {"contractOwners":[…],"currencies":[…],"customers":[…],
 * "sites":[…],"billRuns":[…],"invoices":[…],"adhocInvoices":[…]} in one
 * transaction, writing the INVOICE_CREATED / ADHOC_INVOICE_CREATED ledger
 * row of every invoice. On any bad record nothing is written and a message
 * naming the record is printed. 0 or -1. */
int db_load_file(const char *path);

/* Generates `customers` customers with `invoices` invoices spread over
 * them, plus payments, as a consistent data set. 0 or -1. */
int db_generate(long customers, long invoices, unsigned seed);

#endif
