package facade

// Problems lists every problem the facade answers, so that the external
// tests can check they cover each one.
var Problems = problems
