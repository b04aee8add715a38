"""HTTP plumbing shared by the REST APIs (the people's app, the console); no domain logic."""
