-- Every note in production has a due date; synthetic notes get one too.
UPDATE notes SET due = DATE '2024-06-30' WHERE due IS NULL;
