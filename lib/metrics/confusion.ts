/**
 * Per-class measures from a confusion matrix: the matrix itself, per-class
 * accuracy (recall) and macro-averaged F1.
 *
 * @module
 */

/**
 * Counts predictions per (true class, predicted class).
 * @returns `matrix[i][j]`: samples of class i predicted as class j.
 * @throws {Error} If the arrays differ in length or hold a class outside
 * [0, numClasses).
 */
export function confusionMatrix(
  labels: ArrayLike<number>,
  predictions: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(
      `confusionMatrix: numClasses must be an integer >= 1, got ` +
        `${numClasses}.`,
    );
  }
  if (labels.length !== predictions.length) {
    throw new Error(
      `confusionMatrix: ${labels.length} labels but ${predictions.length} ` +
        `predictions; pass one prediction per label.`,
    );
  }
  const matrix = Array.from(
    { length: numClasses },
    () => new Array<number>(numClasses).fill(0),
  );
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    const predicted = predictions[i];
    for (const [name, value] of [["label", label], ["prediction", predicted]]) {
      if (
        !Number.isInteger(value) || (value as number) < 0 ||
        (value as number) >= numClasses
      ) {
        throw new Error(
          `confusionMatrix: ${name} ${value} at index ${i} is not a class ` +
            `in [0, ${numClasses}).`,
        );
      }
    }
    matrix[label][predicted]++;
  }
  return matrix;
}

/**
 * Accuracy within each true class (recall): `matrix[i][i]` over the
 * samples of class i. A class without samples gets NaN.
 */
export function perClassAccuracy(matrix: number[][]): number[] {
  return matrix.map((row, i) => {
    const support = row.reduce((sum, count) => sum + count, 0);
    return support === 0 ? NaN : row[i] / support;
  });
}

/**
 * Macro-averaged F1: the unweighted mean over classes of
 * F1 = 2 TP / (2 TP + FP + FN). Classes that occur neither as a label nor
 * as a prediction are left out of the mean, and a class that occurs in one
 * but is never predicted correctly counts as F1 = 0. scikit-learn's
 * `f1_score(average="macro", zero_division=0)` with its default labels
 * (those in y_true or y_pred) computes the same.
 * @returns NaN for an empty matrix.
 */
export function macroF1(matrix: number[][]): number {
  const k = matrix.length;
  let sum = 0;
  let classes = 0;
  for (let c = 0; c < k; c++) {
    const truePositives = matrix[c][c];
    let falseNegatives = 0;
    let falsePositives = 0;
    for (let j = 0; j < k; j++) {
      if (j === c) continue;
      falseNegatives += matrix[c][j];
      falsePositives += matrix[j][c];
    }
    const denominator = 2 * truePositives + falsePositives + falseNegatives;
    if (denominator === 0) continue;
    sum += 2 * truePositives / denominator;
    classes++;
  }
  return classes === 0 ? NaN : sum / classes;
}
