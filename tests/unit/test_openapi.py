"""docs/openapi.json is the social-leads API's OpenAPI document, generated from the resolvers of
leads_query, lead_update, lead_merge and lead_erase; it must match what the code generates today."""

from __future__ import annotations

import json
from typing import Any

import pytest
from orcapulse_tiktok.platforms import CAPTURE_SOURCE_IDS, LEAD_STATUSES, PLATFORM_IDS

from scripts.gen_openapi import OUTPUT, document, render
from tests.support.leads import LISTING_PARAMETERS


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return document()


def test_the_committed_document_is_up_to_date(generated):
    assert OUTPUT.read_text(encoding="utf-8") == render(generated), (
        "docs/openapi.json drifted: run `make openapi`"
    )


def test_it_documents_every_route_of_the_read_api(generated):
    operations = {
        (path, method): operation["operationId"]
        for path, item in generated["paths"].items()
        for method, operation in item.items()
    }
    assert operations == {
        ("/social-leads", "get"): "listSocialLeads",
        ("/social-leads/{lead_id}", "get"): "getSocialLead",
        ("/social-leads/{lead_id}", "patch"): "updateSocialLead",
        ("/social-leads/{lead_id}/interactions", "get"): "listSocialLeadInteractions",
        ("/integrations", "get"): "listIntegrations",
        ("/platforms", "get"): "getPlatforms",
        ("/social-leads/{lead_id}/merge", "post"): "mergeSocialLeads",
        ("/social-leads/{lead_id}", "delete"): "eraseSocialLead",
    }
    assert generated["security"] == [{"UserJwt": []}]
    assert generated["components"]["securitySchemes"]["UserJwt"]["scheme"] == "bearer"


def test_errors_are_documented_in_the_one_error_shape(generated):
    for path, item in generated["paths"].items():
        for operation in item.values():
            responses = operation["responses"]
            assert "422" not in responses  # validation errors are 400 here
            # 400 wherever the request has something to validate (an erasure has only its path).
            takes_input = "requestBody" in operation or any(
                p["in"] != "path" for p in operation.get("parameters", [])
            )
            assert {"401", "403"} <= set(responses)
            assert "400" in responses or not takes_input, (path, sorted(responses))
            for status, response in responses.items():
                if status == "204":
                    assert "content" not in response  # no body
                    continue
                schema = response["content"]["application/json"]["schema"]
                if status == "401":
                    # The JWT authorizer answers before the function: its shape is documented too.
                    assert [s["$ref"] for s in schema["anyOf"]] == [
                        "#/components/schemas/ErrorBody",
                        "#/components/schemas/GatewayMessage",
                    ]
                    continue
                ref = schema["$ref"]
                assert (ref == "#/components/schemas/ErrorBody") == (status != "200"), (status, ref)
            assert ("404" in responses) == ("{lead_id}" in path), path  # the routes that name a lead
    assert "HTTPValidationError" not in generated["components"]["schemas"]
    detail = generated["components"]["schemas"]["ErrorDetail"]
    assert detail["required"] == ["code", "message"]
    assert "merged_into" in detail["properties"]  # lead_merged says where the person went


def _enum(parameter: dict[str, Any]) -> list[str]:
    return next(s["enum"] for s in parameter["schema"]["anyOf"] if "enum" in s)


def test_the_patch_documents_its_body_if_match_and_every_answer(generated):
    operation = generated["paths"]["/social-leads/{lead_id}"]["patch"]
    assert {"400", "404", "409", "412", "428"} <= set(operation["responses"])
    assert "ETag" in operation["responses"]["200"]["headers"]
    [header] = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"].lower() == "if-match"
    body = generated["components"]["schemas"]["LeadPatchIn"]
    assert set(body["properties"]) == {"status", "assignee", "labels"}
    assert body["additionalProperties"] is False
    assert body["properties"]["labels"]["maxItems"] == 20
    detail = generated["components"]["schemas"]["LeadDetailOut"]
    assert {"history", "score", "route"} <= set(detail["required"])


def test_parameters_carry_the_platform_configuration_enums_and_limits(generated):
    params = {p["name"]: p for p in generated["paths"]["/social-leads"]["get"]["parameters"]}
    assert list(params) == list(LISTING_PARAMETERS)
    assert _enum(params["platform"]) == list(PLATFORM_IDS)
    assert _enum(params["capture_source"]) == list(CAPTURE_SOURCE_IDS)
    assert _enum(params["status"]) == list(LEAD_STATUSES)
    assert params["limit"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"]["maximum"] == 100
    assert params["limit"]["schema"]["default"] == 25
    assert not any(p["required"] for p in params.values())
    assert _enum(params["high_intent"]) == ["true", "false"]
    assert "last_activity_at" in params["since"]["description"]
    assert "last_activity_at" in params["until"]["description"]
    paging = {
        p["name"]: p for p in generated["paths"]["/social-leads/{lead_id}/interactions"]["get"]["parameters"]
    }
    assert list(paging) == ["lead_id", "limit", "cursor"]
    assert paging["lead_id"]["in"] == "path"
    assert paging["limit"]["schema"]["maximum"] == 100
    lead = generated["paths"]["/social-leads/{lead_id}"]["get"]["responses"]["200"]
    assert set(lead["headers"]) == {"ETag"}
    [integrations_platform] = generated["paths"]["/integrations"]["get"]["parameters"]
    assert _enum(integrations_platform) == list(PLATFORM_IDS)
    json.dumps(generated)  # plain JSON all the way down
