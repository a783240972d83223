"""The job framework: registry, parameters, context, policies. No views, no HTTP."""
