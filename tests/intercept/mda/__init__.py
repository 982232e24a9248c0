"""Tests of `mailwarden mda` and `mailwarden pipe`: Postfix, procmail, maildrop, dovecot-lda."""
