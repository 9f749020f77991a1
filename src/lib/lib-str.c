/* lib-str.c — string, number and time helpers.
 *
 * Trust boundary: parsers here see operator and network input (host:port,
 * sizes); they reject anything they do not fully understand. */
#include "lib/lib.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		log_fatal("out of memory (%zu bytes)", n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		log_fatal("out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		log_fatal("out of memory");
	return p;
}

char *str_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

void str_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

const char *str_tfmt(const char *fmt, ...)
{
	static __thread char tbuf[512];
	char out[sizeof(tbuf)];
	va_list ap;

	/* Through OUT: an argument may be an earlier result, i.e. TBUF itself. */
	va_start(ap, fmt);
	vsnprintf(out, sizeof(out), fmt, ap);
	va_end(ap);
	memcpy(tbuf, out, sizeof(tbuf));
	return tbuf;
}

int str_parse_hostport(const char *s, char **host_r, unsigned *port_r)
{
	const char *colon, *host_start, *host_end;
	char *end;
	unsigned long port;

	if (s[0] == '[') {
		host_start = s + 1;
		host_end = strchr(s, ']');
		if (host_end == NULL || host_end[1] != ':')
			return -1;
		colon = host_end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -1;
		host_start = s;
		host_end = colon;
	}
	if (host_end == host_start || colon[1] == '\0')
		return -1;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port > 65535)
		return -1;
	*host_r = strndup(host_start, (size_t)(host_end - host_start));
	if (*host_r == NULL)
		return -1;
	*port_r = (unsigned)port;
	return 0;
}

static int str_parse_scaled(const char *s, const char *units, const uint64_t *mult, uint64_t *r)
{
	char *end;
	unsigned long long v;
	const char *u;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == '\0') {
		*r = v;
		return 0;
	}
	if (end[1] != '\0' || (u = strchr(units, *end)) == NULL)
		return -1;
	if (v > UINT64_MAX / mult[u - units])
		return -1;
	*r = v * mult[u - units];
	return 0;
}

int str_parse_size(const char *s, uint64_t *size_r)
{
	static const uint64_t mult[] = {1024, 1024, 1048576, 1048576, 1073741824, 1073741824};

	return str_parse_scaled(s, "kKmMgG", mult, size_r);
}

int str_parse_duration(const char *s, uint64_t *secs_r)
{
	static const uint64_t mult[] = {1, 60, 3600, 86400};

	return str_parse_scaled(s, "smhd", mult, secs_r);
}

int64_t time_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
