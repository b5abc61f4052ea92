package app

// HTTPPatterns exposes the routes a registered, for the OpenAPI sync test
// (package app_test), without widening App's API for production callers.
func HTTPPatterns(a *App) []string { return a.http.Patterns() }
