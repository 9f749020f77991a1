/* fuzz-config.c — config_parse() on arbitrary text.
 *
 * Trust boundary: the file is operator input, but it is the first thing the
 * daemon reads and it is edited by hand, so any bytes must give either a
 * configuration or one error message naming the file and line. Checked here:
 * an error has the form "PATH:LINE: ..." with LINE within the text; a parsed
 * configuration has its required regions, canonical jurisdictions, store URIs
 * and paths resolved against the file's directory. */
#include "lib/config.h"

#include "fuzz.h"

#include <ctype.h>

static const char *const fuzz_paths[] = {"/etc/sealmail/sealmail.conf", "sealmail.conf"};

static size_t fuzz_count_lines(const uint8_t *data, size_t size)
{
	size_t n = 1;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n;
}

/* "PATH:LINE: " with LINE <= MAX_LINE. */
static void fuzz_check_error(const char *path, const char *error, size_t max_line)
{
	size_t plen = strlen(path);
	const char *p;
	char *end;
	unsigned long line;

	FUZZ_CHECK(error != NULL);
	FUZZ_CHECK(strncmp(error, path, plen) == 0 && error[plen] == ':');
	p = error + plen + 1;
	FUZZ_CHECK(isdigit((unsigned char)*p));
	line = strtoul(p, &end, 10);
	FUZZ_CHECK(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
	FUZZ_CHECK(line <= max_line);
}

static void fuzz_check_path(const char *value, int absolute)
{
	FUZZ_CHECK(value != NULL);
	if (absolute && value[0] != '\0')
		FUZZ_CHECK(value[0] == '/');
}

static void fuzz_check_config(const struct config *cfg, const char *path)
{
	int absolute = path[0] == '/';

	FUZZ_CHECK(strcmp(cfg->path, path) == 0);
	FUZZ_CHECK(cfg->region_count >= 1 && cfg->region_count <= CONFIG_REGIONS_MAX);
	for (size_t i = 0; i < cfg->region_count; i++) {
		const struct config_region *r = &cfg->regions[i];

		FUZZ_CHECK(r->name != NULL && r->name[0] != '\0' && strlen(r->name) <= 32);
		FUZZ_CHECK(config_region_find(cfg, r->name) == r);
		FUZZ_CHECK(isupper((unsigned char)r->jurisdiction[0]) &&
			   isupper((unsigned char)r->jurisdiction[1]) &&
			   r->jurisdiction[2] == '\0');
		FUZZ_CHECK(r->store != NULL);
		FUZZ_CHECK(strncmp(r->store, "rados:", 6) == 0 ||
			   (strncmp(r->store, "fs:", 3) == 0 && r->store[3] != '\0' &&
			    (!absolute || r->store[3] == '/')));
	}
	for (char **s = cfg->serve_regions; *s != NULL; s++)
		FUZZ_CHECK(config_region_find(cfg, *s) != NULL);
	for (char **d = cfg->domains; *d != NULL; d++)
		FUZZ_CHECK((*d)[0] != '\0' && strpbrk(*d, ", \t") == NULL);
	FUZZ_CHECK(cfg->hostname != NULL && cfg->log_level != NULL && cfg->user != NULL);
	FUZZ_CHECK(cfg->tlog_origin != NULL && cfg->tlog_origin[0] != '\0');
	FUZZ_CHECK(cfg->smtp_listen != NULL && cfg->imap_listen != NULL &&
		   cfg->imap_listen_tls != NULL);
	fuzz_check_path(cfg->keys_dir, absolute);
	fuzz_check_path(cfg->directory, absolute);
	fuzz_check_path(cfg->tls_cert, absolute);
	fuzz_check_path(cfg->tls_key, absolute);
	fuzz_check_path(cfg->tlog_dir, absolute);
	fuzz_check_path(cfg->tlog_key, absolute);
	fuzz_check_path(cfg->legal_policy, absolute);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max_line = fuzz_count_lines(data, size);

	for (size_t i = 0; i < N_ELEMENTS(fuzz_paths); i++) {
		struct config *cfg = NULL;
		char *error = NULL;

		if (config_parse(fuzz_paths[i], (const char *)data, size, &cfg, &error) == 0) {
			FUZZ_CHECK(cfg != NULL && error == NULL);
			fuzz_check_config(cfg, fuzz_paths[i]);
			config_free(&cfg);
			FUZZ_CHECK(cfg == NULL);
		} else {
			FUZZ_CHECK(cfg == NULL);
			fuzz_check_error(fuzz_paths[i], error, max_line);
			free(error);
		}
	}
	return 0;
}
