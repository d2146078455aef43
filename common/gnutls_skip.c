/*
 * Keeps GnuTLS from initializing itself in kms and auth, which load it
 * only because libpq links libldap. GnuTLS 3.3 and later call
 * gnutls_global_init from a library constructor unless the program
 * defines _gnutls_global_init_skip returning nonzero (the
 * GNUTLS_SKIP_GLOBAL_INIT macro of gnutls/gnutls.h). libldap calls
 * gnutls_global_init itself before it uses TLS (tlsg_init in OpenLDAP's
 * libraries/libldap/tls_g.c), so LDAP over TLS still works.
 * cj_service_link_options(... SKIP_GNUTLS_INIT) links and exports this
 * symbol, so that the GnuTLS constructor finds it.
 */

/* The name and contract are GnuTLS's: nonzero skips the implicit call. */
int _gnutls_global_init_skip(void);

int _gnutls_global_init_skip(void)
{
    return 1;
}
