"""Results of a run and the reports made from them: console, JUnit XML, JSON."""
