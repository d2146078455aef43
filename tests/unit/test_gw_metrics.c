/* Tests for the gateway's Prometheus metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gw_metrics.h"
#include "gw_routes.h"

static void test_requests_are_counted_by_route_and_status(void **state)
{
    unsigned allowed;
    const struct gw_route *login =
        gw_route_find("/v1/login", GW_METHOD_POST, &allowed);
    char *text;

    (void)state;
    gw_metrics_record_request(gw_route_index(login), GW_METHOD_POST, 413,
                              0.002);
    gw_metrics_record_request(gw_route_index(login), GW_METHOD_POST, 413, 0.3);
    gw_metrics_record_request((size_t)-1, GW_METHOD_NONE, 404, 0.0001);
    text = gw_metrics_render();
    assert_non_null(text);
    assert_non_null(strstr(text, "cerrojo_gateway_requests_total{route=\"/v1/"
                                 "login\",method=\"POST\",status=\"413\"} 2"));
    assert_non_null(strstr(text, "route=\"unmatched\",method=\"other\","
                                 "status=\"404\"} 1"));
    assert_non_null(strstr(text, "cerrojo_gateway_request_duration_seconds_"
                                 "bucket{route=\"/v1/login\",le=\"0.005\"} 1"));
    assert_non_null(strstr(text, "cerrojo_gateway_request_duration_seconds_"
                                 "bucket{route=\"/v1/login\",le=\"+Inf\"} 2"));
    free(text);
}

static void test_rejections_are_counted_by_reason(void **state)
{
    char *text;

    (void)state;
    gw_metrics_record_rejection(GW_REJECT_JSON_TOO_DEEP);
    gw_metrics_record_rejection(GW_REJECT_COUNT); /* ignored */
    text = gw_metrics_render();
    assert_non_null(strstr(text, "cerrojo_gateway_rejections_total{reason="
                                 "\"json_too_deep\"} 1"));
    assert_non_null(strstr(text, "cerrojo_gateway_rejections_total{reason="
                                 "\"replayed\"} 0"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_are_counted_by_route_and_status),
        cmocka_unit_test(test_rejections_are_counted_by_reason),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
