/* lib-config.c — parses and validates sealmail.conf.
 *
 * Trust boundary: operator input. Every key is looked up in one table that
 * gives its section, type, destination and default; anything unknown or
 * malformed is refused with "FILE:LINE: key 'KEY': problem". */
#include "lib/config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum config_type { CT_STRING, CT_PATH, CT_LIST, CT_SIZE, CT_UINT, CT_DURATION, CT_HOSTPORT };

struct config_key {
	const char *section;
	const char *key;
	enum config_type type;
	size_t offset;
	const char *def;
	const char *const *choices; /* CT_STRING: the values allowed, or NULL */
};

#define K(sec, key, type, field, def)                                                              \
	{                                                                                          \
		sec, key, type, offsetof(struct config, field), def, NULL                          \
	}
/* A string that must be one of CHOICES (NULL-terminated). */
#define KC(sec, key, field, def, choices)                                                          \
	{                                                                                          \
		sec, key, CT_STRING, offsetof(struct config, field), def, choices                  \
	}
static const char *const record_ciphers[] = {"auto", "xchacha20poly1305", "aes256gcm", NULL};
static const struct config_key config_keys[] = {
    K("server", "hostname", CT_STRING, hostname, "localhost"),
    K("server", "domains", CT_LIST, domains, ""),
    K("server", "serve_regions", CT_LIST, serve_regions, ""),
    K("server", "keys_dir", CT_PATH, keys_dir, "keys"),
    K("server", "directory", CT_PATH, directory, "directory.sqlite"),
    K("server", "user", CT_STRING, user, ""),
    K("server", "log_level", CT_STRING, log_level, "info"),
    K("server", "core_dumps", CT_UINT, core_dumps, "0"),
    K("tls", "cert", CT_PATH, tls_cert, "tls/cert.pem"),
    K("tls", "key", CT_PATH, tls_key, "tls/key.pem"),
    K("smtp", "listen", CT_HOSTPORT, smtp_listen, "127.0.0.1:2525"),
    K("smtp", "max_message_size", CT_SIZE, smtp_max_message_size, "50M"),
    K("smtp", "max_recipients", CT_UINT, smtp_max_recipients, "100"),
    K("smtp", "max_line", CT_SIZE, smtp_max_line, "1000"),
    K("smtp", "max_command_line", CT_SIZE, smtp_max_command_line, "512"),
    K("smtp", "max_connections", CT_UINT, smtp_max_connections, "1000"),
    K("smtp", "max_connections_per_ip", CT_UINT, smtp_max_connections_per_ip, "50"),
    K("smtp", "max_errors", CT_UINT, smtp_max_errors, "10"),
    K("smtp", "timeout_command", CT_DURATION, smtp_timeout_command, "5m"),
    K("smtp", "timeout_data", CT_DURATION, smtp_timeout_data, "10m"),
    K("smtp", "unknown_user_delay_ms", CT_UINT, smtp_unknown_user_delay_ms, "500"),
    K("smtp", "shutdown_grace", CT_DURATION, smtp_shutdown_grace, "10s"),
    K("smtp", "max_commands_per_second", CT_UINT, smtp_max_commands_per_second, "100"),
    K("imap", "listen", CT_HOSTPORT, imap_listen, "127.0.0.1:1143"),
    K("imap", "listen_tls", CT_HOSTPORT, imap_listen_tls, "127.0.0.1:1993"),
    K("imap", "max_line", CT_SIZE, imap_max_line, "64k"),
    K("imap", "max_literal", CT_SIZE, imap_max_literal, "50M"),
    K("imap", "max_connections", CT_UINT, imap_max_connections, "20000"),
    K("imap", "max_connections_per_ip", CT_UINT, imap_max_connections_per_ip, "50"),
    K("imap", "max_unauth_commands", CT_UINT, imap_max_unauth_commands, "20"),
    K("imap", "timeout_idle", CT_DURATION, imap_timeout_idle, "30m"),
    K("imap", "timeout_unauth", CT_DURATION, imap_timeout_unauth, "1m"),
    K("imap", "auth_fail_delay_ms", CT_UINT, imap_auth_fail_delay_ms, "1000"),
    K("imap", "auth_fail_lockout", CT_UINT, imap_auth_fail_lockout, "10"),
    K("imap", "auth_fail_window", CT_DURATION, imap_auth_fail_window, "15m"),
    K("imap", "max_commands_per_second", CT_UINT, imap_max_commands_per_second, "200"),
    K("imap", "idle_poll", CT_DURATION, imap_idle_poll, "0"),
    K("store", "epoch_seconds", CT_DURATION, store_epoch_seconds, "1h"),
    KC("store", "record_cipher", store_record_cipher, "auto", record_ciphers),
    K("log", "dir", CT_PATH, tlog_dir, "tlog"),
    K("log", "origin", CT_STRING, tlog_origin, ""),
    K("log", "key", CT_PATH, tlog_key, "keys/log.key"),
    K("legal", "policy", CT_PATH, legal_policy, "policy.conf"),
    K("legal", "notify_interval", CT_DURATION, legal_notify_interval, "1m"),
};
#undef K
#undef KC

static const char *const region_keys[] = {"jurisdiction", "store", "referral_host"};

struct config_parser {
	struct config *cfg;
	const char *path;
	unsigned line;
	char section[64];
	struct config_region *region; /* current [region NAME], else NULL */
	uint8_t seen[N_ELEMENTS(config_keys)];
	char *error;
};

static int config_fail(struct config_parser *p, const char *key, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
static int config_fail(struct config_parser *p, const char *key, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = strlen(p->path) + strlen(msg) + (key ? strlen(key) : 0) + 48;
	p->error = xmalloc(len);
	if (key != NULL)
		snprintf(p->error, len, "%s:%u: key '%s': %s", p->path, p->line, key, msg);
	else
		snprintf(p->error, len, "%s:%u: %s", p->path, p->line, msg);
	return -1;
}

static char **config_split_list(const char *value)
{
	char *copy = xstrdup(value), *tok, *save = NULL;
	char **list = xcalloc(strlen(value) + 2, sizeof(char *));
	size_t n = 0;

	for (tok = strtok_r(copy, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save))
		list[n++] = xstrdup(tok);
	list[n] = NULL;
	free(copy);
	return list;
}

static void config_free_list(char **list)
{
	if (list == NULL)
		return;
	for (char **p = list; *p != NULL; p++)
		free(*p);
	free(list);
}

/* "a, b, c" of CHOICES, for an error message (a static buffer). */
static const char *config_choices(const char *const *choices)
{
	static char out[128];
	size_t len = 0;

	out[0] = '\0';
	for (; *choices != NULL && len < sizeof(out); choices++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", len ? ", " : "",
					*choices);
	return out;
}

static int config_set(struct config_parser *p, const struct config_key *k, const char *value)
{
	void *dst = (char *)p->cfg + k->offset;
	char *host;
	unsigned port;
	uint64_t n;

	switch (k->type) {
	case CT_STRING:
		if (k->choices != NULL) {
			const char *const *c = k->choices;

			while (*c != NULL && strcmp(*c, value) != 0)
				c++;
			if (*c == NULL)
				return config_fail(p, k->key, "'%s' is not one of: %s", value,
						   config_choices(k->choices));
		}
		free(*(char **)dst);
		*(char **)dst = xstrdup(value);
		return 0;
	case CT_PATH:
		free(*(char **)dst);
		*(char **)dst = value[0] == '\0' ? xstrdup("") : fs_path_join(p->cfg->dir, value);
		return 0;
	case CT_LIST:
		config_free_list(*(char ***)dst);
		*(char ***)dst = config_split_list(value);
		return 0;
	case CT_HOSTPORT:
		if (value[0] != '\0') {
			if (str_parse_hostport(value, &host, &port) < 0)
				return config_fail(p, k->key, "expected HOST:PORT, got '%s'",
						   value);
			free(host);
		}
		free(*(char **)dst);
		*(char **)dst = xstrdup(value);
		return 0;
	case CT_SIZE:
		if (str_parse_size(value, &n) < 0)
			return config_fail(p, k->key, "expected a size like 64k or 50M, got '%s'",
					   value);
		break;
	case CT_DURATION:
		if (str_parse_duration(value, &n) < 0)
			return config_fail(p, k->key,
					   "expected a duration like 30s or 5m, got '%s'", value);
		break;
	case CT_UINT:
		if (str_parse_size(value, &n) < 0 ||
		    !isdigit((unsigned char)value[strlen(value) - 1]))
			return config_fail(p, k->key, "expected a number, got '%s'", value);
		break;
	}
	*(uint64_t *)dst = n;
	return 0;
}

static int config_region_set(struct config_parser *p, const char *key, const char *value)
{
	struct config_region *r = p->region;

	if (strcmp(key, "jurisdiction") == 0) {
		if (strlen(value) != 2 || !isalpha((unsigned char)value[0]) ||
		    !isalpha((unsigned char)value[1]))
			return config_fail(p, key, "expected an ISO 3166-1 alpha-2 code, got '%s'",
					   value);
		r->jurisdiction[0] = (char)toupper((unsigned char)value[0]);
		r->jurisdiction[1] = (char)toupper((unsigned char)value[1]);
		r->jurisdiction[2] = '\0';
	} else if (strcmp(key, "store") == 0) {
		const char *colon = strchr(value, ':');
		char *store;
		size_t len;

		if (colon == NULL || colon == value)
			return config_fail(p, key, "expected fs:PATH or rados:..., got '%s'",
					   value);
		if (strncmp(value, "fs:", 3) == 0) {
			char *path;

			if (value[3] == '\0')
				return config_fail(p, key, "fs: needs a path");
			path = fs_path_join(p->cfg->dir, value + 3);
			len = strlen(path) + 4;
			store = xmalloc(len);
			snprintf(store, len, "fs:%s", path);
			free(path);
		} else if (strncmp(value, "rados:", 6) == 0) {
			store = xstrdup(value);
		} else {
			return config_fail(p, key, "unknown store type in '%s' (use fs: or rados:)",
					   value);
		}
		/* Replaced only once the new value is good: config_free() frees it. */
		free(r->store);
		r->store = store;
	} else if (strcmp(key, "referral_host") == 0) {
		free(r->referral_host);
		r->referral_host = xstrdup(value);
	}
	return 0;
}

static int config_section(struct config_parser *p, char *name)
{
	char *arg;

	p->region = NULL;
	if (strncmp(name, "region", 6) == 0 && isspace((unsigned char)name[6])) {
		arg = str_trim(name + 7);
		if (arg[0] == '\0' || strlen(arg) > 32)
			return config_fail(p, NULL, "region name must be 1-32 characters");
		for (const char *c = arg; *c != '\0'; c++)
			if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
				return config_fail(p, NULL,
						   "region name '%s' may only hold "
						   "letters, digits, '-' and '_'",
						   arg);
		if (config_region_find(p->cfg, arg) != NULL)
			return config_fail(p, NULL, "region '%s' defined twice", arg);
		if (p->cfg->region_count == CONFIG_REGIONS_MAX)
			return config_fail(p, NULL, "too many regions (max %d)",
					   CONFIG_REGIONS_MAX);
		p->region = &p->cfg->regions[p->cfg->region_count++];
		p->region->name = xstrdup(arg);
		snprintf(p->section, sizeof(p->section), "region");
		return 0;
	}
	for (size_t i = 0; i < N_ELEMENTS(config_keys); i++) {
		if (strcmp(config_keys[i].section, name) == 0) {
			snprintf(p->section, sizeof(p->section), "%s", name);
			return 0;
		}
	}
	return config_fail(p, NULL, "unknown section [%s]", name);
}

static int config_key_value(struct config_parser *p, char *key, char *value)
{
	if (p->section[0] == '\0')
		return config_fail(p, key, "key outside of any section");
	if (p->region != NULL) {
		for (size_t i = 0; i < N_ELEMENTS(region_keys); i++)
			if (strcmp(region_keys[i], key) == 0)
				return config_region_set(p, key, value);
		return config_fail(p, key, "unknown key in [region %s]", p->region->name);
	}
	for (size_t i = 0; i < N_ELEMENTS(config_keys); i++) {
		const struct config_key *k = &config_keys[i];

		if (strcmp(k->section, p->section) != 0 || strcmp(k->key, key) != 0)
			continue;
		if (p->seen[i])
			return config_fail(p, key, "set twice in [%s]", p->section);
		p->seen[i] = 1;
		return config_set(p, k, value);
	}
	return config_fail(p, key, "unknown key in [%s]", p->section);
}

static int config_parse_line(struct config_parser *p, char *line)
{
	char *s = str_trim(line), *eq, *end;

	if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
		return 0;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || str_trim(end + 1)[0] != '\0')
			return config_fail(p, NULL, "malformed section header");
		*end = '\0';
		return config_section(p, str_trim(s + 1));
	}
	eq = strchr(s, '=');
	if (eq == NULL)
		return config_fail(p, NULL, "expected 'key = value'");
	*eq = '\0';
	s = str_trim(s);
	if (s[0] == '\0')
		return config_fail(p, NULL, "empty key name");
	return config_key_value(p, s, str_trim(eq + 1));
}

static int config_defaults(struct config_parser *p)
{
	unsigned line = p->line;

	p->line = 0;
	for (size_t i = 0; i < N_ELEMENTS(config_keys); i++) {
		if (!p->seen[i] && config_set(p, &config_keys[i], config_keys[i].def) < 0)
			return -1;
	}
	p->line = line;
	return 0;
}

static int config_check(struct config_parser *p)
{
	struct config *cfg = p->cfg;

	p->line = 0;
	if (cfg->region_count == 0)
		return config_fail(p, NULL, "no [region NAME] section: at least one is required");
	for (size_t i = 0; i < cfg->region_count; i++) {
		if (cfg->regions[i].jurisdiction[0] == '\0')
			return config_fail(p, "jurisdiction", "missing in [region %s]",
					   cfg->regions[i].name);
		if (cfg->regions[i].store == NULL)
			return config_fail(p, "store", "missing in [region %s]",
					   cfg->regions[i].name);
	}
	for (char **r = cfg->serve_regions; *r != NULL; r++)
		if (config_region_find(cfg, *r) == NULL)
			return config_fail(p, "serve_regions", "no [region %s] is defined", *r);
	if (cfg->tlog_origin[0] == '\0') {
		free(cfg->tlog_origin);
		cfg->tlog_origin = xmalloc(strlen(cfg->hostname) + 16);
		sprintf(cfg->tlog_origin, "%s/sealmail-log", cfg->hostname);
	}
	return 0;
}

int config_parse(const char *path, const char *text, size_t len, struct config **cfg_r,
		 char **error_r)
{
	struct config_parser p;
	char *copy, *line, *next;
	char *slash;
	int ret = -1;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.cfg = xcalloc(1, sizeof(*p.cfg));
	p.cfg->path = xstrdup(path);
	p.cfg->dir = xstrdup(path);
	slash = strrchr(p.cfg->dir, '/');
	if (slash == NULL) {
		free(p.cfg->dir);
		p.cfg->dir = xstrdup(".");
	} else if (slash == p.cfg->dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (memchr(text, '\0', len) != NULL) {
		p.line = 1;
		config_fail(&p, NULL, "file contains a NUL byte");
		goto out;
	}
	for (line = copy; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		p.line++;
		if (config_parse_line(&p, line) < 0)
			goto out;
	}
	if (config_defaults(&p) < 0 || config_check(&p) < 0)
		goto out;
	ret = 0;
out:
	free(copy);
	if (ret < 0) {
		config_free(&p.cfg);
		*error_r = p.error;
	} else {
		*cfg_r = p.cfg;
	}
	return ret;
}

int config_load(const char *path, struct config **cfg_r, char **error_r)
{
	uint8_t *data;
	size_t len;
	char *abs = NULL;
	int ret;

	if (path[0] != '/') {
		char *cwd = getcwd(NULL, 0);

		if (cwd != NULL) {
			abs = fs_path_join(cwd, path);
			free(cwd);
		}
	}
	if (fs_read_all(abs ? abs : path, &data, &len) < 0) {
		size_t elen = strlen(path) + 64;

		*error_r = xmalloc(elen);
		snprintf(*error_r, elen, "%s: cannot read the configuration file", path);
		free(abs);
		return -1;
	}
	ret = config_parse(abs ? abs : path, (const char *)data, len, cfg_r, error_r);
	free(data);
	free(abs);
	return ret;
}

const struct config_region *config_region_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->region_count; i++)
		if (strcmp(cfg->regions[i].name, name) == 0)
			return &cfg->regions[i];
	return NULL;
}

void config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < N_ELEMENTS(config_keys); i++) {
		void *dst = (char *)cfg + config_keys[i].offset;

		if (config_keys[i].type == CT_LIST)
			config_free_list(*(char ***)dst);
		else if (config_keys[i].type == CT_STRING || config_keys[i].type == CT_PATH ||
			 config_keys[i].type == CT_HOSTPORT)
			free(*(char **)dst);
	}
	for (size_t i = 0; i < cfg->region_count; i++) {
		free(cfg->regions[i].name);
		free(cfg->regions[i].store);
		free(cfg->regions[i].referral_host);
	}
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
	*cfgp = NULL;
}
