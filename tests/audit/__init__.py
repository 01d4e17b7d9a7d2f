"""Bad-input audit of every public callable (issue 7): the table, its runner and its report."""
