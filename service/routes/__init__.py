"""HTTP routes kept thin: each reads the request, calls the store or the jobs, and answers.
``jobs`` holds the job lookups every job route shares."""
