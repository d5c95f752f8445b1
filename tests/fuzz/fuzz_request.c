/*
 * fuzz_request.c - the plugin API's request validation: the bytes are a
 * request body; it goes through register (plugin_build_record), update
 * (plugin_apply_update against a fixed record) and the one-plugin requests
 * (plugin_check_id_request).  Invariants: a built record has a plugin_id
 * that plugin_check_id accepts and a valid image, and an update of it that
 * names only its plugin_id succeeds.
 */
#include "fuzz.h"
#include "plugin.h"

static void fuzz_request(const uint8_t *data, size_t size)
{
    json_t *req = fuzz_json(data, size), *rec = NULL, *upd = NULL, *base = NULL, *idreq = NULL;
    json_t *urls = json_pack("{s:s}", "HARBOR", "harbor.example.com/base");
    plugin_ctx ctx = {"domain-1", "2024-01-01T00:00:00.000Z", urls};
    rd_error err;

    FUZZ_CHECK(urls != NULL);
    if (!json_is_object(req))
        goto done;
    (void)plugin_check_id_request(req, 0, &err);
    (void)plugin_check_id_request(req, 1, &err);
    (void)plugin_check_template(json_object_get(req, "template"), &err);
    base = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{},s:{},s:{},s:[],s:{},s:{},s:s,s:s}",
                     "plugin_id", "plugin-x", "name", "X", "state", "ENABLED", "resource_type",
                     "inventory.Collector", "image", "spaceone/plugin-x", "provider", "",
                     "registry_type", "DOCKER_HUB", "registry_config", "capability", "template",
                     "labels", "tags", "docs", "domain_id", "domain-1", "created_at",
                     "2024-01-01T00:00:00.000Z");
    FUZZ_CHECK(base != NULL);
    if (plugin_apply_update(base, req, ctx.now, &upd, &err) != RD_OK)
        FUZZ_CHECK(upd == NULL);
    json_decref(upd);
    upd = NULL;
    if (plugin_build_record(req, &ctx, &rec, &err) != RD_OK) {
        FUZZ_CHECK(rec == NULL);
        goto done;
    }
    FUZZ_CHECK(plugin_check_id(json_string_value(json_object_get(rec, "plugin_id")), &err) ==
               RD_OK);
    FUZZ_CHECK(plugin_check_image(json_string_value(json_object_get(rec, "image")), &err) == RD_OK);
    idreq = json_pack("{s:O}", "plugin_id", json_object_get(rec, "plugin_id"));
    FUZZ_CHECK(idreq != NULL);
    FUZZ_CHECK(plugin_apply_update(rec, idreq, ctx.now, &upd, &err) == RD_OK);
done:
    json_decref(idreq);
    json_decref(upd);
    json_decref(rec);
    json_decref(base);
    json_decref(urls);
    json_decref(req);
}

FUZZ_ENTRY(request)
