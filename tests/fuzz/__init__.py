"""Hostile-input fuzzing (issue 17): property-based runs (hypothesis, derandomized, capped examples) over BPMN/DMN
deploy, task completion, CSV import and every API endpoint's JSON, and schemathesis against the served OpenAPI
document — never a server error, every refusal a 4xx that names what was wrong."""
